from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import ConfigError
from gateway.logging import (
    MASK,
    PERSONAL_CODE_MASK,
    configure_logging,
    mask_personal_data,
    mask_text,
)

# Personal data used below; none of it may ever show up in clear text.
CODES = ["010190-12345", "01019012345", "320512-34567", "32051234567", "311299-20001"]
NAMES = ["Jānis", "Bērziņš", "Anna Kalniņa", "Brīvības iela 1-2, Rīga"]
SECRETS = [*CODES, *NAMES, "12345", "34567"]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back for other tests."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    uvicorn = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    }
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logging.captureWarnings(False)
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, (handlers, propagate) in uvicorn.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate


def _emit_everything() -> None:
    """Log personal data through every path a line can take."""
    structlog.contextvars.bind_contextvars(
        request_id="req-1", message_id="msg-1", correlation_id="corr-1"
    )
    log = structlog.get_logger("gateway.test")
    log.info(
        "received notification for 010190-12345",
        personal_code="01019012345",
        person={"first_name": "Jānis", "last_name": "Bērziņš", "id": 42},
        victims=[{"full_name": "Anna Kalniņa"}],
        url="https://plus.example/api/persons/320512-34567/cases?x=1",
        nested={"deeper": {"note": "see 32051234567", "items": ["311299-20001"]}},
        address="Brīvības iela 1-2, Rīga",
        operation_name="NotifyCase",
    )
    log.info("positional %s", "010190-12345")
    try:
        raise ValueError("person 010190-12345 not found")
    except ValueError:
        log.exception("lookup failed")

    std = logging.getLogger("gateway.stdlib")
    # Names can only be recognised by their key: free text is masked for personal codes only
    # (see gateway.logging), so names go into stdlib lines as extras.
    std.warning("stdlib message about %s", "010190-12345")
    std.info("with extra", extra={"FirstName": "Jānis", "note": "01019012345"})
    try:
        raise KeyError("320512-34567")
    except KeyError:
        std.exception("stdlib failure")

    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        "/api/persons/01019012345",
        "1.1",
        200,
    )
    logging.getLogger("uvicorn.error").error("Exception in ASGI application: 320512-34567")


def _ours(line: dict[str, object]) -> bool:
    """True for a line :func:`_emit_everything` wrote."""
    logger, event = line.get("logger"), str(line.get("event"))
    if logger == "uvicorn.error":
        return event.startswith("Exception in ASGI application")
    return logger in ("gateway.test", "gateway.stdlib", "uvicorn.access")


def _assert_clean(output: str) -> None:
    assert output.strip(), "nothing was logged"
    for secret in SECRETS:
        assert secret not in output, f"{secret!r} leaked into the log"


def test_json_mode_masks_everything(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("production", "DEBUG")
    _emit_everything()
    out = capsys.readouterr().out
    _assert_clean(out)

    every = [json.loads(line) for line in out.splitlines() if line.strip()]
    # JSON escapes non-ASCII ("J\\u0101nis"); check the decoded text too.
    _assert_clean("\n".join(json.dumps(line, ensure_ascii=False) for line in every))
    # Only this test's lines are counted: a server thread of an earlier test in this worker
    # process may still log its shutdown through the handlers configured here (its lines
    # were checked for personal data above with the rest).
    lines = [line for line in every if _ours(line)]
    assert len(lines) == 8
    first = lines[0]
    assert first["event"] == f"received notification for {PERSONAL_CODE_MASK}"
    assert first["personal_code"] == MASK
    assert first["person"] == MASK
    assert first["victims"] == MASK
    assert first["address"] == MASK
    assert first["url"] == f"https://plus.example/api/persons/{PERSONAL_CODE_MASK}/cases?x=1"
    assert first["nested"] == {
        "deeper": {"note": f"see {PERSONAL_CODE_MASK}", "items": [PERSONAL_CODE_MASK]}
    }
    assert first["operation_name"] == "NotifyCase"
    assert first["level"] == "info"
    assert first["logger"] == "gateway.test"
    assert "timestamp" in first
    # Context variables on every line, structlog and stdlib alike.
    for line in lines:
        assert line["request_id"] == "req-1"
        assert line["message_id"] == "msg-1"
        assert line["correlation_id"] == "corr-1"
    exception_lines = [line for line in lines if "exception" in line]
    assert len(exception_lines) == 2
    assert all("Traceback" in line["exception"] for line in exception_lines)
    access = next(line for line in lines if line["logger"] == "uvicorn.access")
    assert PERSONAL_CODE_MASK in access["event"]
    extra = next(line for line in lines if line["event"] == "with extra")
    assert extra["FirstName"] == MASK
    assert extra["note"] == PERSONAL_CODE_MASK


def test_console_mode_masks_everything(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("development", "DEBUG")
    _emit_everything()
    out = capsys.readouterr().out
    _assert_clean(out)
    assert PERSONAL_CODE_MASK in out
    assert "request_id=req-1" in out
    assert "Traceback" in out
    assert "\x1b[" not in out, "no colour codes when not writing to a terminal"


def test_level_filters(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("production", "WARNING")
    structlog.get_logger("gateway.level").info("quiet")
    logging.getLogger("gateway.level").info("quiet too")
    structlog.get_logger("gateway.level").warning("loud")
    out = capsys.readouterr().out
    assert "quiet" not in out
    assert "loud" in out


@pytest.mark.parametrize(("environment", "level"), [("staging", "INFO"), ("production", "CHATTY")])
def test_bad_configuration(restore_logging: None, environment: str, level: str) -> None:
    with pytest.raises(ConfigError):
        configure_logging(environment, level)


# -- mask_text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "010190-12345",
        "01019012345",
        "320512-34567",
        "32051234567",
        "code=010190-12345&x",
        "/persons/010190-12345/cases",
        "pk:01019012345.",
        "ValueError('310101-21234')",
        "010190 12345",
        "010190\u201312345",
        "abc010190-12345def",
    ],
)
def test_mask_text_hides_codes(text: str) -> None:
    masked = mask_text(text)
    assert PERSONAL_CODE_MASK in masked
    assert "12345" not in masked.replace(PERSONAL_CODE_MASK, "")
    assert "34567" not in masked.replace(PERSONAL_CODE_MASK, "")
    assert "21234" not in masked.replace(PERSONAL_CODE_MASK, "")


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-15T10:00:00Z",
        "VPD-2024-000123",
        "amount 12345678901234",  # longer digit run: not a code
        "991399-12345",  # impossible date, not a new-format code
        "010190-92345",  # century digit 9 does not exist
        "6f1c2a4e-8b3d-4e7a-9c1b-2d3e4f5a6b7c",
        "+371 2000 0000",
    ],
)
def test_mask_text_leaves_other_numbers(text: str) -> None:
    assert mask_text(text) == text


@given(
    day=st.integers(1, 31),
    month=st.integers(1, 12),
    year=st.integers(0, 99),
    serial=st.integers(0, 29999),
    hyphen=st.booleans(),
    prefix=st.text(alphabet=st.characters(blacklist_categories=["Nd"]), max_size=20),
    suffix=st.text(alphabet=st.characters(blacklist_categories=["Nd"]), max_size=20),
)
def test_mask_text_property_old_format(
    day: int, month: int, year: int, serial: int, hyphen: bool, prefix: str, suffix: str
) -> None:
    code = f"{day:02d}{month:02d}{year:02d}{'-' if hyphen else ''}{serial:05d}"
    masked = mask_text(prefix + code + suffix)
    assert code not in masked
    assert masked == prefix + PERSONAL_CODE_MASK + suffix


@given(rest=st.integers(0, 9999), serial=st.integers(0, 99999), hyphen=st.booleans())
def test_mask_text_property_new_format(rest: int, serial: int, hyphen: bool) -> None:
    code = f"32{rest:04d}{'-' if hyphen else ''}{serial:05d}"
    assert mask_text(f"see {code}.") == f"see {PERSONAL_CODE_MASK}."


# -- mask_personal_data ---------------------------------------------------------------------


def test_mask_personal_data_keys_and_nesting() -> None:
    event = {
        "event": "x",
        "FirstName": "Jānis",
        "lastName": "Bērziņš",
        "personal-code": "010190-12345",
        "name": "Anna",
        "victim_name": "Anna",
        "birth_date": "1990-01-01",
        "BirthDate": "1990-01-01",
        "ContactPerson": {"Phone": "+37120000000"},
        "payload": {"Person": {"PersonalCode": "01019012345"}, "items": [{"Address": "Rīga"}]},
        "person_id": 42,
        "victims_count": 2,
        "partner": "tis",
        "operation_name": "NotifyCase",
        "empty_name": None,
        "code_as_int": 32051234567,
        "error": ValueError("bad code 010190-12345"),
        "args": ("010190-12345",),
    }
    out = mask_personal_data(None, "info", event)
    assert out["FirstName"] == MASK
    assert out["lastName"] == MASK
    assert out["personal-code"] == MASK
    assert out["name"] == MASK
    assert out["victim_name"] == MASK
    assert out["birth_date"] == MASK
    assert out["BirthDate"] == MASK
    assert out["ContactPerson"] == MASK
    assert out["payload"] == {"Person": MASK, "items": [{"Address": MASK}]}
    assert out["person_id"] == 42
    assert out["victims_count"] == 2
    assert out["partner"] == "tis"
    assert out["operation_name"] == "NotifyCase"
    assert out["empty_name"] is None
    assert out["code_as_int"] == PERSONAL_CODE_MASK
    assert "010190-12345" not in str(out["error"])
    assert out["args"] == (PERSONAL_CODE_MASK,)
    # The input is not modified in place.
    assert event["FirstName"] == "Jānis"


def test_mask_personal_data_renders_live_exceptions() -> None:
    try:
        raise RuntimeError("for 010190-12345")
    except RuntimeError as exc:
        out = mask_personal_data(None, "error", {"event": "x", "exc_info": exc})
    assert "exc_info" not in out
    assert "RuntimeError" in out["exception"]
    assert "010190-12345" not in out["exception"]


def test_mask_personal_data_survives_deep_nesting() -> None:
    deep: dict[str, object] = {"note": "010190-12345"}
    for _ in range(50):
        deep = {"d": deep}
    out = mask_personal_data(None, "info", {"event": "x", "deep": deep})
    assert "010190-12345" not in json.dumps(out)


def test_a_closed_stdout_sends_the_line_to_stderr_not_a_traceback(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server thread logging after the stdout it started with was closed (a test's capture)
    writes its line to stderr instead of printing a "Logging error" traceback, and never into
    the standard output another command now prints its JSON to."""
    import io
    import sys

    first = io.StringIO()
    monkeypatch.setattr(sys, "stdout", first)
    configure_logging("production", "INFO")
    logging.getLogger("gateway.test").info("before")
    assert json.loads(first.getvalue())["event"] == "before"
    first.close()
    now, errors = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", now)
    monkeypatch.setattr(sys, "stderr", errors)
    logging.getLogger("gateway.test").info("after")
    assert "Logging error" not in errors.getvalue()
    assert json.loads(errors.getvalue())["event"] == "after"
    assert now.getvalue() == ""
