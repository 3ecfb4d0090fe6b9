"""The E-case shared-classifier service's data, as its JSON contract defines it.

Our design (the sources name the service, REQUIREMENTS.md T-10, but give no interface); see
docs/CLASSIFIERS.md. One code list::

    {"source": "VPD.FUNCTION_SUBTYPE", "version": "2025.1", "title": "...",
     "codes": [{"code": "PD", "label_lv": "...", "label_en": "...",
                "valid_from": "2020-01-01", "valid_to": null}]}

Both the client (what the service answered) and the simulator (what a test published) read it
through :meth:`RemoteClassifier.from_json`, so the two sides cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

__all__ = ["ContractError", "RemoteClassifier", "RemoteCode", "RemoteVersion"]

# Codes and versions end up in YAML files, XSD enumerations and journal entries: keep them to
# characters that need no escaping anywhere, and refuse the rest at the boundary.
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]{0,31}")
_MAX_LABEL = 500
_MAX_CODES = 5000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ContractError(ValueError):
    """A document does not follow the classifier service contract."""


def _text(data: dict[str, Any], key: str, where: str, pattern: re.Pattern[str] | None) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ContractError(f"{where}.{key}: must be a non-empty string")
    if pattern is not None and not pattern.fullmatch(value):
        raise ContractError(f"{where}.{key}: {value[:80]!r} is not allowed here")
    if pattern is None and (len(value) > _MAX_LABEL or _CONTROL.search(value)):
        raise ContractError(f"{where}.{key}: too long or has control characters")
    return value


def _day(data: dict[str, Any], key: str, where: str) -> date | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ContractError(f"{where}.{key}: must be a date YYYY-MM-DD or null")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ContractError(f"{where}.{key}: {value[:40]!r} is not a date YYYY-MM-DD") from None


@dataclass(frozen=True)
class RemoteVersion:
    """One entry of the service's list: which code list, at which version."""

    source: str
    version: str

    @classmethod
    def list_from_json(cls, data: object) -> list[RemoteVersion]:
        """Parse ``GET /classifiers``; ContractError if it is not a list of {source, version}."""
        if not isinstance(data, list):
            raise ContractError("the classifier list must be a JSON array")
        out = []
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise ContractError(f"[{i}]: must be an object")
            out.append(
                cls(
                    source=_text(item, "source", f"[{i}]", _SOURCE),
                    version=_text(item, "version", f"[{i}]", _VERSION),
                )
            )
        return out


@dataclass(frozen=True)
class RemoteCode:
    """One code of a remote code list, with its validity period (both ends inclusive)."""

    code: str
    label_lv: str
    label_en: str
    valid_from: date | None = None
    valid_to: date | None = None

    def valid_on(self, day: date) -> bool:
        """Whether the code is in force on ``day``."""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )

    def to_json(self) -> dict[str, Any]:
        """The code as the service sends it."""
        out: dict[str, Any] = {"code": self.code, "label_lv": self.label_lv}
        out["label_en"] = self.label_en
        if self.valid_from is not None:
            out["valid_from"] = self.valid_from.isoformat()
        if self.valid_to is not None:
            out["valid_to"] = self.valid_to.isoformat()
        return out


@dataclass(frozen=True)
class RemoteClassifier:
    """One code list at one version, as the service publishes it."""

    source: str
    version: str
    title: str
    codes: tuple[RemoteCode, ...]

    @classmethod
    def from_json(cls, data: object) -> RemoteClassifier:
        """Parse ``GET /classifiers/{source}``; ContractError naming the first bad key."""
        if not isinstance(data, dict):
            raise ContractError("a classifier must be a JSON object")
        source = _text(data, "source", "classifier", _SOURCE)
        version = _text(data, "version", "classifier", _VERSION)
        title = _text(data, "title", "classifier", None)
        raw_codes = data.get("codes")
        if not isinstance(raw_codes, list) or not raw_codes:
            raise ContractError("classifier.codes: must be a non-empty array")
        if len(raw_codes) > _MAX_CODES:
            raise ContractError(f"classifier.codes: more than {_MAX_CODES} codes")
        codes: list[RemoteCode] = []
        seen: set[str] = set()
        for i, item in enumerate(raw_codes):
            where = f"codes[{i}]"
            if not isinstance(item, dict):
                raise ContractError(f"{where}: must be an object")
            code = RemoteCode(
                code=_text(item, "code", where, _CODE),
                label_lv=_text(item, "label_lv", where, None),
                label_en=_text(item, "label_en", where, None),
                valid_from=_day(item, "valid_from", where),
                valid_to=_day(item, "valid_to", where),
            )
            if code.code in seen:
                raise ContractError(f"{where}.code: duplicate code {code.code!r}")
            if code.valid_from and code.valid_to and code.valid_to < code.valid_from:
                raise ContractError(f"{where}: valid_to is before valid_from")
            seen.add(code.code)
            codes.append(code)
        return cls(source=source, version=version, title=title, codes=tuple(codes))

    def to_json(self) -> dict[str, Any]:
        """The code list as the service sends it."""
        return {
            "source": self.source,
            "version": self.version,
            "title": self.title,
            "codes": [c.to_json() for c in self.codes],
        }

    def current(self, day: date) -> tuple[RemoteCode, ...]:
        """The codes in force on ``day``, in the service's order."""
        return tuple(c for c in self.codes if c.valid_on(day))
