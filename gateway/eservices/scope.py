"""What each portal audience may receive: PLUS's answer stripped to the data-scope table.

The table is data (``mappings/eservices/scope.yaml``): per e-service and audience, the field
paths that may leave, the list of clients (only those assigned to the requester leave) and a
stricter scope for minors. :func:`load_scope_table` reads and checks it once; a bad table is a
:class:`~gateway.errors.ConfigError` naming the file and key. :func:`apply_scope` is pure: it
returns a stripped copy, the paths it stripped and how many clients it removed, and never
touches its input.

A stripped path is generic (``clients[].personal_code``), never a value: it is safe to log.
A key that does not look like a field name (PLUS keying a map by personal code, say) is
reported as ``<key>`` so that no value reaches a log line through a path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import ConfigError, PermanentError
from gateway.store.usage import ESERVICES, RECIPIENT_TYPES

__all__ = [
    "AUDIENCES",
    "ESERVICES",
    "EServiceNotPermittedError",
    "ScopeResult",
    "ScopeRule",
    "ScopeTable",
    "apply_scope",
    "default_scope_table",
    "load_scope_table",
]

#: Who uses the e-services: the usage counts' recipient types.
AUDIENCES = RECIPIENT_TYPES

SCOPE_FILE = Path("eservices") / "scope.yaml"
_DEFAULT_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_SEGMENT = re.compile(r"([a-z][a-z0-9_]*)(\[\])?\Z")
_SCALARS = (str, int, float, bool, type(None))


class EServiceNotPermittedError(PermanentError):
    """The audience may not use the e-service at all (no row in the scope table)."""

    code = "ESERVICE_NOT_PERMITTED"


@dataclass(frozen=True)
class _Leaf:
    """A value that leaves as it is: a scalar or a list of scalars."""


@dataclass(frozen=True)
class _Obj:
    children: dict[str, _Node]


@dataclass(frozen=True)
class _Arr:
    item: _Node
    #: Set on the list of clients: the item node for a client flagged as a minor.
    minor_item: _Node | None = None
    clients: _Clients | None = None


_Node = _Leaf | _Obj | _Arr
_LEAF = _Leaf()


@dataclass(frozen=True)
class _Clients:
    """Where the clients are in an answer, and what identifies and flags each."""

    list: tuple[str, ...]
    id: str
    minor_flag: str | None


@dataclass(frozen=True)
class ScopeRule:
    """One row of the table: what ``audience`` may receive from ``eservice``."""

    eservice: str
    audience: str
    fields: tuple[str, ...]
    minor_exclude: tuple[str, ...]
    clients: _Clients | None
    _tree: _Node
    _minor_tree: _Node


@dataclass(frozen=True)
class ScopeTable:
    """The loaded data-scope table."""

    version: str
    source: Path
    rules: dict[tuple[str, str], ScopeRule]

    def rule(self, audience: str, eservice: str) -> ScopeRule:
        """The row for ``audience`` and ``eservice``; EServiceNotPermittedError if none."""
        try:
            return self.rules[(eservice, audience)]
        except KeyError:
            raise EServiceNotPermittedError(
                f"audience {audience!r} may not use e-service {eservice!r}"
            ) from None

    def audiences(self, eservice: str) -> tuple[str, ...]:
        """The audiences allowed to use ``eservice``."""
        return tuple(a for (e, a) in self.rules if e == eservice)


@dataclass
class ScopeResult:
    """A stripped answer and what was taken out of it (paths, never values)."""

    answer: dict[str, Any]
    #: Generic paths of what was stripped (``clients[].personal_code``), first seen first.
    stripped_fields: list[str] = field(default_factory=list)
    #: How many values were stripped in all (a path may be stripped once per client).
    stripped_count: int = 0
    #: Clients in PLUS's answer not assigned to the requester, removed whole.
    removed_clients: int = 0
    #: True when a minor's stricter scope was applied (to the answer or to a client in it).
    minor_scope: bool = False

    @property
    def clean(self) -> bool:
        """True when PLUS sent nothing beyond the scope."""
        return not self.stripped_fields and not self.removed_clients

    def summary(self) -> dict[str, Any]:
        """What was taken out, safe to log or journal (paths and counts, never values)."""
        return {
            "stripped_fields": list(self.stripped_fields),
            "stripped_count": self.stripped_count,
            "removed_clients": self.removed_clients,
            "minor_scope": self.minor_scope,
        }


# --- loading -------------------------------------------------------------------------------


def _parse_path(where: str, path: Any) -> list[tuple[str, bool]]:
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{where}: a field path must be a non-empty string")
    segments: list[tuple[str, bool]] = []
    for part in path.split("."):
        m = _SEGMENT.match(part)
        if m is None:
            raise ConfigError(f"{where}: bad field path {path!r} (segment {part!r})")
        segments.append((m.group(1), m.group(2) is not None))
    return segments


def _build(where: str, paths: Iterable[str]) -> _Node:
    """A tree of the allowed paths; a path both a value and a container is an error."""
    root: dict[str, Any] = {}
    for path in paths:
        segments = _parse_path(where, path)
        node = root
        for i, (name, is_list) in enumerate(segments):
            entry = node.get(name)
            if i == len(segments) - 1:
                if entry is not None:
                    twice = entry[0] in ("leaf", "list_leaf")
                    problem = "is listed twice" if twice else "is both a value and a container"
                    raise ConfigError(f"{where}: field path {path!r} {problem}")
                node[name] = ("list_leaf" if is_list else "leaf", None)
                continue
            kind = "list" if is_list else "obj"
            if entry is None:
                entry = node[name] = (kind, {})
            elif entry[0] in ("leaf", "list_leaf"):
                raise ConfigError(f"{where}: field path {path!r} is both a value and a container")
            elif entry[0] != kind:
                raise ConfigError(f"{where}: field path {path!r}: {name!r} is a list and is not")
            node = entry[1]
    return _Obj(_freeze(root))


def _freeze(raw: dict[str, Any]) -> dict[str, _Node]:
    out: dict[str, _Node] = {}
    for name, (kind, children) in raw.items():
        if kind == "leaf":
            out[name] = _LEAF
        elif kind == "list_leaf":
            out[name] = _Arr(_LEAF)
        elif kind == "list":
            out[name] = _Arr(_Obj(_freeze(children)))
        else:
            out[name] = _Obj(_freeze(children))
    return out


def _attach_clients(where: str, tree: _Node, minor_tree: _Node, clients: _Clients) -> _Node:
    """Mark the list of clients in ``tree``, with the minor scope of its items beside it."""

    def walk(node: _Node, minor: _Node, rest: tuple[str, ...]) -> _Node:
        if not isinstance(node, _Obj) or not isinstance(minor, _Obj):
            raise ConfigError(f"{where}: key 'clients.list': not a list of objects in 'fields'")
        name = rest[0]
        child = node.children.get(name)
        minor_child = minor.children.get(name, _Obj({}))
        if child is None:
            raise ConfigError(
                f"{where}: key 'clients.list': {'.'.join(clients.list)!r} is not in 'fields'"
            )
        if len(rest) > 1:
            replaced = walk(child, minor_child, rest[1:])
        else:
            if not isinstance(child, _Arr) or not isinstance(child.item, _Obj):
                raise ConfigError(
                    f"{where}: key 'clients.list': {'.'.join(clients.list)!r} must be a list of "
                    "objects in 'fields' (name[].key)"
                )
            if clients.id not in child.item.children:
                raise ConfigError(
                    f"{where}: key 'clients.id': {clients.id!r} is not a field of the list"
                )
            minor_item = minor_child.item if isinstance(minor_child, _Arr) else _Obj({})
            replaced = _Arr(child.item, minor_item=minor_item, clients=clients)
        return _Obj({**node.children, name: replaced})

    return walk(tree, minor_tree, clients.list)


def _rule(where: str, eservice: str, audience: str, raw: Any) -> ScopeRule:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping with 'fields'")
    unknown = set(raw) - {"fields", "minor_exclude", "clients"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    fields = raw.get("fields")
    if not isinstance(fields, list) or not fields:
        raise ConfigError(f"{where}: key 'fields' must be a non-empty list of field paths")
    exclude = raw.get("minor_exclude", [])
    if not isinstance(exclude, list):
        raise ConfigError(f"{where}: key 'minor_exclude' must be a list of field paths")
    for path in exclude:
        if path not in fields:
            raise ConfigError(f"{where}: key 'minor_exclude': {path!r} is not one of 'fields'")
    tree = _build(f"{where}: key 'fields'", fields)
    minor_tree = _build(f"{where}: key 'fields'", [p for p in fields if p not in exclude])
    clients: _Clients | None = None
    raw_clients = raw.get("clients")
    if raw_clients is not None:
        if not isinstance(raw_clients, dict) or set(raw_clients) - {"list", "id", "minor_flag"}:
            raise ConfigError(f"{where}: key 'clients' must map list, id and minor_flag")
        lst, ident, flag = (raw_clients.get(k) for k in ("list", "id", "minor_flag"))
        if not isinstance(lst, str) or not all(_NAME.match(p) for p in lst.split(".")):
            raise ConfigError(f"{where}: key 'clients.list' must be a dotted path of names")
        if not isinstance(ident, str) or not _NAME.match(ident):
            raise ConfigError(f"{where}: key 'clients.id' must be a field name")
        if flag is not None and (not isinstance(flag, str) or not _NAME.match(flag)):
            raise ConfigError(f"{where}: key 'clients.minor_flag' must be a field name")
        clients = _Clients(tuple(lst.split(".")), ident, flag)
        tree = _attach_clients(where, tree, minor_tree, clients)
        minor_tree = _attach_clients(where, minor_tree, minor_tree, clients)
    elif any(p.startswith("clients[]") for p in fields):
        # A list of clients leaves only through the assignment check.
        raise ConfigError(f"{where}: a list of clients needs key 'clients'")
    return ScopeRule(
        eservice=eservice,
        audience=audience,
        fields=tuple(fields),
        minor_exclude=tuple(exclude),
        clients=clients,
        _tree=tree,
        _minor_tree=minor_tree,
    )


def load_scope_table(path: Path) -> ScopeTable:
    """Read and check the scope table at ``path``; ConfigError naming the file and key."""
    try:
        with Path(path).open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the scope table: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the scope table must be a mapping")
    unknown = set(data) - {"version", "eservices"}
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise ConfigError(f"{path}: key 'version' must be a quoted string such as \"2027.1\"")
    services = data.get("eservices")
    if not isinstance(services, dict):
        raise ConfigError(f"{path}: key 'eservices' must map e-services to audiences")
    rules: dict[tuple[str, str], ScopeRule] = {}
    for eservice, audiences in services.items():
        if eservice not in ESERVICES:
            raise ConfigError(f"{path}: key 'eservices.{eservice}': unknown e-service")
        if not isinstance(audiences, dict) or not audiences:
            raise ConfigError(f"{path}: key 'eservices.{eservice}' must map audiences to scopes")
        for audience, raw in audiences.items():
            if audience not in AUDIENCES:
                raise ConfigError(
                    f"{path}: key 'eservices.{eservice}.{audience}': unknown audience"
                )
            where = f"{path}: key 'eservices.{eservice}.{audience}'"
            rules[(eservice, audience)] = _rule(where, eservice, audience, raw)
    missing = [e for e in ESERVICES if e not in services]
    if missing:
        raise ConfigError(f"{path}: key 'eservices.{missing[0]}' is missing")
    return ScopeTable(version=version, source=Path(path), rules=rules)


@functools.cache
def default_scope_table(mappings: Path = _DEFAULT_MAPPINGS) -> ScopeTable:
    """The table under ``mappings`` (the repository's by default), loaded once per folder."""
    return load_scope_table(Path(mappings) / SCOPE_FILE)


# --- applying ------------------------------------------------------------------------------


class _Walk:
    def __init__(self, assigned: set[str] | None) -> None:
        self.assigned = assigned
        self.result = ScopeResult(answer={})
        self._seen: set[str] = set()

    def strip(self, path: str) -> None:
        self.result.stripped_count += 1
        if path not in self._seen:
            self._seen.add(path)
            self.result.stripped_fields.append(path)

    def node(self, node: _Node, value: Any, path: str) -> tuple[bool, Any]:
        """(kept, value): the part of ``value`` that ``node`` lets leave."""
        if isinstance(node, _Leaf):
            if isinstance(value, _SCALARS) or (
                isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value)
            ):
                return True, list(value) if isinstance(value, list) else value
            self.strip(path)
            return False, None
        if isinstance(node, _Obj):
            if not isinstance(value, dict):
                self.strip(path)
                return False, None
            out: dict[str, Any] = {}
            for key, child_value in value.items():
                name = key if isinstance(key, str) and _NAME.match(key) else "<key>"
                child_path = f"{path}.{name}" if path else name
                child = node.children.get(key) if isinstance(key, str) else None
                if child is None:
                    self.strip(child_path)
                    continue
                kept, child_out = self.node(child, child_value, child_path)
                if kept:
                    out[key] = child_out
            return True, out
        if not isinstance(value, list):
            self.strip(path)
            return False, None
        items: list[Any] = []
        for item in value:
            item_node = node.item
            if node.clients is not None:
                if not self._assigned(node.clients, item):
                    self.result.removed_clients += 1
                    continue
                if node.minor_item is not None and self._flagged(node.clients, item):
                    item_node = node.minor_item
                    self.result.minor_scope = True
            kept, item_out = self.node(item_node, item, path + "[]")
            if kept:
                items.append(item_out)
        return True, items

    def _assigned(self, clients: _Clients, item: Any) -> bool:
        if self.assigned is None or not isinstance(item, dict):
            # No assignment given for an audience that needs one: nobody leaves (fail closed).
            return False
        ident = item.get(clients.id)
        return (
            isinstance(ident, (str, int))
            and not isinstance(ident, bool)
            and str(ident) in self.assigned
        )

    @staticmethod
    def _flagged(clients: _Clients, item: dict[str, Any]) -> bool:
        # Anything but an explicit False counts as a minor: a missing or odd flag errs on the
        # side of disclosing less.
        return clients.minor_flag is not None and item.get(clients.minor_flag) is not False


def apply_scope(
    audience: str,
    eservice: str,
    answer: dict[str, Any],
    *,
    assigned_client_ids: set[str] | None,
    minor: bool,
    table: ScopeTable | None = None,
) -> ScopeResult:
    """Strip ``answer`` to what ``audience`` may receive from ``eservice``.

    ``assigned_client_ids``: the clients assigned to the requesting employer, volunteer or
    municipality (None for a client's own case); a client in a list of clients without an
    assignment is removed whole, and with None nobody in such a list leaves. ``minor``: the
    answer's subject is a minor, so the stricter scope applies to all of it (a list of clients
    also applies it per client flagged by PLUS). ``table``: the loaded table (the repository's
    by default). Raises EServiceNotPermittedError when the audience may not use the e-service.
    """
    table = table or default_scope_table()
    rule = table.rule(audience, eservice)
    walk = _Walk(assigned_client_ids)
    tree = rule._minor_tree if minor else rule._tree
    _kept, out = walk.node(tree, answer, "")
    result = walk.result
    result.answer = out if isinstance(out, dict) else {}
    result.minor_scope = result.minor_scope or (minor and bool(rule.minor_exclude))
    return result
