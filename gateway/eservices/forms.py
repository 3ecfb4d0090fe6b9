"""The portal's form catalogue: one JSON Schema per form and version, as data (ES-14).

``<eservices.forms>/<form>/<version>.json`` is a JSON Schema (draft 2020-12) with three keys of
ours beside it: ``x-eservice`` (the e-service the form belongs to), ``x-audiences`` (who may
submit it) and ``x-requirement`` (the REQUIREMENTS.md item it implements). The catalogue is
read and every schema checked once (:meth:`FormCatalogue.load`); a bad file stops start-up
with a ConfigError naming it. A new form or version is a new file, never code.

:meth:`FormCatalogue.validate` refuses an unknown form (``ESERVICE_FORM_UNKNOWN``), an unknown
version of a known one (``ESERVICE_FORM_VERSION_UNKNOWN``, naming the versions there are), and
data failing the schema (``ESERVICE_FORM_INVALID``, every error with its field path, at most
20, never the offending value).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from gateway.errors import ConfigError
from gateway.eservices.errors import FormError, UnknownFormError, UnknownFormVersionError
from gateway.store.usage import ESERVICES, RECIPIENT_TYPES

__all__ = ["Form", "FormCatalogue"]

_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
_VERSION = re.compile(r"[0-9]{1,4}(\.[0-9]{1,4}){0,2}\Z")
_MAX_ERRORS = 20


@dataclass(frozen=True)
class Form:
    """One form in one version, its schema compiled."""

    name: str
    version: str
    eservice: str
    audiences: frozenset[str]
    title: str
    requirement: str
    validator: Draft202012Validator


def _path(parts: Any) -> str:
    return ".".join(["form_data", *(str(p) for p in parts)])


class FormCatalogue:
    """Every form and version of the portal's catalogue, loaded once."""

    def __init__(self, forms: dict[tuple[str, str], Form]) -> None:
        self._forms = forms
        self._versions: dict[str, list[str]] = {}
        for name, version in sorted(forms):
            self._versions.setdefault(name, []).append(version)

    @classmethod
    def load(cls, root: Path) -> FormCatalogue:
        """Read ``root/<form>/<version>.json``; ConfigError naming the file for any problem."""
        root = Path(root)
        if not root.is_dir():
            raise ConfigError(f"eservices.forms: {root} is not a directory")
        forms: dict[tuple[str, str], Form] = {}
        for path in sorted(root.glob("*/*.json")):
            name, version = path.parent.name, path.stem
            if not _NAME.match(name) or not _VERSION.match(version):
                raise ConfigError(f"{path}: a form is <name>/<version>.json (e.g. x/1.0.json)")
            try:
                schema = json.loads(path.read_text(encoding="utf-8"))
                Draft202012Validator.check_schema(schema)
            except (OSError, ValueError, SchemaError) as exc:
                raise ConfigError(f"{path}: not a JSON Schema: {exc}") from exc
            eservice = schema.get("x-eservice")
            audiences = schema.get("x-audiences")
            if eservice not in ESERVICES:
                raise ConfigError(f"{path}: key 'x-eservice' must be one of {list(ESERVICES)}")
            if (
                not isinstance(audiences, list)
                or not audiences
                or any(a not in RECIPIENT_TYPES for a in audiences)
            ):
                raise ConfigError(f"{path}: key 'x-audiences' must list {list(RECIPIENT_TYPES)}")
            forms[(name, version)] = Form(
                name=name,
                version=version,
                eservice=eservice,
                audiences=frozenset(audiences),
                title=str(schema.get("title", name)),
                requirement=str(schema.get("x-requirement", "")),
                validator=Draft202012Validator(schema),
            )
        if not forms:
            raise ConfigError(f"eservices.forms: no forms under {root}")
        return cls(forms)

    def forms(self) -> list[Form]:
        """Every form and version, by name and version."""
        return [self._forms[k] for k in sorted(self._forms)]

    def get(self, eservice: str, name: str | None, version: str | None) -> Form:
        """The form ``name`` in ``version`` of ``eservice``; a FormError subclass if none."""
        if not name or name not in self._versions:
            raise UnknownFormError(
                f"the portal's catalogue has no form {name!r}" if name else "no form named",
                details=[{"path": "form", "message": "unknown form"}],
            )
        versions = self._versions[name]
        if not version or (name, version) not in self._forms:
            raise UnknownFormVersionError(
                f"form {name} has no version {version!r}; versions: {', '.join(versions)}",
                details=[{"path": "form_version", "message": f"one of {', '.join(versions)}"}],
            )
        form = self._forms[(name, version)]
        if form.eservice != eservice:
            raise UnknownFormError(
                f"form {name} belongs to e-service {form.eservice}, not {eservice}",
                details=[{"path": "form", "message": f"not a form of {eservice}"}],
            )
        return form

    def validate(self, form: Form, text: str | None) -> dict[str, Any]:
        """``text`` (the form's JSON) parsed and checked against ``form``'s schema."""
        if text is None:
            raise FormError(
                f"form {form.name} {form.version} carries no data",
                details=[{"path": "form_data", "message": "required"}],
            )
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise FormError(
                "form_data is not JSON",
                details=[{"path": "form_data", "message": "not JSON"}],
            ) from exc
        errors = sorted(form.validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            # The validator's message quotes the value (a name, a personal code): give the
            # keyword that failed and the path instead.
            details = [
                {"path": _path(e.absolute_path), "message": f"fails {e.validator}"}
                for e in errors[:_MAX_ERRORS]
            ]
            raise FormError(
                f"form {form.name} {form.version}: {len(errors)} field(s) fail the form's schema",
                details=details,
            )
        if not isinstance(data, dict):
            raise FormError(
                "form_data must be a JSON object",
                details=[{"path": "form_data", "message": "not an object"}],
            )
        return data
