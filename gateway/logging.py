"""Structured logging for the gateway, with personal data masked on every line.

One processor chain serves both structlog loggers and the standard library (uvicorn, SQLAlchemy,
APScheduler, zeep, ...): every record ends in :class:`structlog.stdlib.ProcessorFormatter`,
whose final steps turn exceptions into text, mask personal data and render JSON (production)
or a console line (development). Masking therefore happens in one place, after everything that
could add text to a line (interpolated stdlib arguments, tracebacks, stack dumps, extras).

Personal codes are replaced by a fixed ``******-*****`` rather than a keyed-hash hint: the whole
space of Latvian personal codes is about 10^9 values, so any short hash is reversible by brute
force as soon as its key leaks, and a pseudonym is still personal data under the GDPR. Log lines
are correlated by ``request_id`` / ``message_id`` / ``correlation_id`` instead, which carry no
personal data.

Names and addresses have no recognisable shape, so they are masked by *key* only (``first_name``,
``person``, ``victims``, ...; see ``_SENSITIVE_PHRASES``): pass them as key-value pairs, never
interpolated into the message text, where only personal codes can be recognised.

uvicorn: its own loggers are reset to propagate to the root handler here; start uvicorn with
``log_config=None`` so it does not install its own handlers afterwards.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from gateway.errors import ConfigError

__all__ = [
    "MASK",
    "PERSONAL_CODE_MASK",
    "VALUE_MASK",
    "configure_logging",
    "mask_personal_data",
    "mask_text",
]

#: What a value under a personal-data key becomes.
MASK = "***"
#: What a personal code inside any text becomes.
PERSONAL_CODE_MASK = "******-*****"

_DASH = "[-\u2010-\u2015 ]?"  # hyphen, Unicode dashes (copied from documents) or one space
# Old format DDMMYY-CNNNN: a plausible date and century digit 0-2 keep ordinary 11-digit numbers
# (amounts, ids) readable; new format since 2017: 32NNNN-NNNNN. Bounded by non-digits only, so
# codes inside URLs (/persons/01019012345/cases) and exception text are caught as well.
_PERSONAL_CODE = re.compile(
    r"(?<!\d)(?:"
    rf"(?:0[1-9]|[12]\d|3[01])(?:0[1-9]|1[0-2])\d\d{_DASH}[0-2]\d{{4}}"
    rf"|32\d{{4}}{_DASH}\d{{5}}"
    r")(?!\d)"
)

# Keys whose values are personal data whatever they look like. Keys are compared after
# normalisation (camelCase and dashes to snake_case, lower case), so FirstName, first-name and
# first_name are one key. Whole-key phrases match anywhere in the key (victim_first_name);
# single words must be a whole token (so "operation_name" and "partner" stay readable).
_SENSITIVE_PHRASES = (
    "personal_code",
    "person_code",
    "personas_kods",
    "first_name",
    "last_name",
    "full_name",
    "given_name",
    "family_name",
    "middle_name",
    "maiden_name",
    "birth_date",
    "date_of_birth",
    "contact_person",
)
_SENSITIVE_TOKENS = frozenset(
    {
        "person",
        "persons",
        "victim",
        "victims",
        "address",
        "addresses",
        "street",
        "surname",
        "firstname",
        "lastname",
        "fullname",
        "personalcode",
        "birthdate",
        "dob",
        "phone",
        "email",
        "vards",
        "uzvards",
    }
)
# Identifiers and counts about a person are not the person: keep them for operations.
_NEUTRAL_LAST_TOKENS = frozenset({"id", "ids", "count", "type", "ref"})
# ProcessorFormatter's bookkeeping (a LogRecord and a flag); removed before rendering anyway.
_META_KEYS = frozenset({"_record", "_from_structlog"})
_MAX_DEPTH = 20

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


# Validators quote the value they refuse, and that value is the sender's data: a name or a
# birth date has no shape to recognise, but the validator's fixed wording after it does.
# jsonschema starts its message with the value's repr ("'Bērziņš' is too long", "'1990-13-45'
# is not a 'date'", "['a', 'b'] is not valid under ..."), usually after our "path: " prefix;
# libxml2 writes "The value '...' is not accepted" and "Element 'x': '...' is not a valid value"
# (gateway/xml/schemas.py masks those at the source too). Greedy within the line, so a value
# holding a quote is masked whole; property names ("'x' is a required property") stay.
_QUOTED_VALUE = re.compile(
    r"(?:^|(?<=: )|(?<=[Vv]alue ))"
    r"(?:'[^\n]*'|\"[^\n]*\"|\[[^\n]*\]|\{[^\n]*\})"
    r"(?= (?:is not|does not|is too|is greater|is less|is expected|should be|has non-unique"
    r"|has a length|has fewer|has more))",
    re.MULTILINE,
)
#: What a quoted value in a validator's message becomes.
VALUE_MASK = "'***'"


def mask_text(s: str) -> str:
    """Mask personal data recognisable in free text: every Latvian personal code (replaced by
    ``******-*****``) and the value quoted in a validator's error message (``'***'``)."""
    return _QUOTED_VALUE.sub(VALUE_MASK, _PERSONAL_CODE.sub(PERSONAL_CODE_MASK, s))


def _is_sensitive_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    norm = _NON_WORD.sub("_", _CAMEL.sub("_", key).lower()).strip("_")
    if not norm:
        return False
    tokens = norm.split("_")
    if norm == "name":
        return True
    if tokens[-1] in _NEUTRAL_LAST_TOKENS:
        return False
    if any(phrase in norm for phrase in _SENSITIVE_PHRASES):
        return True
    return any(token in _SENSITIVE_TOKENS for token in tokens)


def _mask_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, bool | float):
        return value
    if depth >= _MAX_DEPTH:
        return MASK
    if isinstance(value, Mapping):
        return {k: _mask_entry(k, v, depth + 1) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_mask_value(v, depth + 1) for v in value)
    if isinstance(value, list | set | frozenset):
        return [_mask_value(v, depth + 1) for v in value]
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", errors="replace")
        masked = mask_text(text)
        return masked if masked != text else value
    # int (a code that lost its leading zero or hyphen), exceptions, paths, arbitrary objects:
    # the renderers print str() or repr(), so check what they would print.
    for text in (str(value), repr(value)):
        masked = mask_text(text)
        if masked != text:
            return masked
    return value


def _mask_entry(key: object, value: Any, depth: int) -> Any:
    if _is_sensitive_key(key):
        # Keep "absent" visible (None, empty): it tells a missing value from a present one
        # without revealing anything.
        return value if value is None or value == "" else MASK
    return _mask_value(value, depth)


def mask_personal_data(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Structlog processor: mask personal codes in all text and values under personal keys.

    Recurses into dicts and lists; the event text itself and rendered exceptions are masked
    like any other value. A live ``exc_info`` is rendered to text first (as
    ``format_exc_info`` does), so the processor is safe wherever it sits in a chain.
    """
    if event_dict.get("exc_info"):
        event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    return {
        key: value if key in _META_KEYS else _mask_entry(key, value, 0)
        for key, value in event_dict.items()
    }


def _shared_processors() -> list[Processor]:
    # Run for structlog events before they are handed to logging, and as the pre-chain for
    # stdlib records, so both kinds of lines carry the same fields.
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _drop_uvicorn_color_message(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    # uvicorn passes a duplicate of its message with ANSI colour codes as an `extra`; it is
    # noise in both renderers.
    event_dict.pop("color_message", None)
    return event_dict


class _StdoutHandler(logging.StreamHandler):
    """A stream handler on ``sys.stdout`` that survives that stream being closed under it.

    A plain ``StreamHandler`` keeps the stream it was given: once that stream is closed (a
    test's output capture, a daemon's redirected stdout), a server thread still logging its
    shutdown makes Python print a "Logging error" traceback instead of the line. The line goes
    to the current ``sys.stderr`` instead, never into another command's standard output (the
    CLI prints JSON there).
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record``; switch to ``sys.stderr`` first if our stream was closed."""
        if getattr(self.stream, "closed", False):
            # Not setStream(): it flushes the old stream, which raises once it is closed.
            self.stream = sys.stderr
        super().emit(record)


def configure_logging(environment: str = "development", level: str = "INFO") -> None:
    """Route structlog and the standard library through one masked, structured pipeline.

    ``environment`` is "production" (one JSON object per line) or "development" (a readable
    console line). Safe to call more than once; the last call wins.
    """
    if environment not in ("production", "development"):
        raise ConfigError(
            f"unknown logging environment {environment!r}; use production or development"
        )
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ConfigError(f"unknown log level {level!r}")

    stream = sys.stdout
    renderer: Processor
    if environment == "production":
        renderer = structlog.processors.JSONRenderer()
    else:
        colors = bool(getattr(stream, "isatty", lambda: False)())
        renderer = structlog.dev.ConsoleRenderer(colors=colors)

    shared = _shared_processors()
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *shared,
            structlog.stdlib.ExtraAdder(),
            _drop_uvicorn_color_message,
            structlog.processors.StackInfoRenderer(),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks become plain text here, in both modes, so they pass through masking;
            # the console renderer's own (rich) tracebacks would print local variables unmasked.
            structlog.processors.format_exc_info,
            mask_personal_data,
            renderer,
        ],
    )
    handler = _StdoutHandler()
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)

    # uvicorn installs its own handlers (and stops propagation) on these; send them to ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    # httpx logs every request at INFO (the calendar polls its CalDAV collections every few
    # seconds); our own clients log what matters, so theirs only speak up on trouble.
    logging.getLogger("httpx").setLevel(max(numeric, logging.WARNING))
    logging.captureWarnings(True)
