"""Rewrite a classifier file to a new remote version, atomically and journaled.

:func:`render` produces the new file text from the current file and a diff: version, codes in
the service's order, labels from the service; an existing entry keeps its canonical code and
every other column, a new one gets the proposed canonical code. The file is edited in place, so
a review shows only what changed: the version value is replaced, unchanged entries keep their
text (and the comments above them), changed and new ones are written in the files' flow style.
A file laid out so that this is not possible is regenerated whole, keeping its comment header.
Either way the text is loaded back and compared before anything is written.

:func:`apply_change` writes it (temporary file in the same directory, fsync, rename) and
journals the change; if the journal cannot be written the old file is put back, so a file is
never changed without its journal entry, nor half written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.classifiers.breaks import Break
from gateway.classifiers.diff import WIRE_COLUMN, ClassifierDiff
from gateway.errors import ConfigError
from gateway.mapping.spec import Classifier, load_classifier
from gateway.store import Store

__all__ = ["JOURNAL_STATUS", "PlannedChange", "apply_change", "load_text", "plan", "render"]

#: Status of the journal entry written for every applied sync.
JOURNAL_STATUS = "classifier_synced"
#: Top-level keys in the order a regenerated file lists them (unknown ones follow).
_TOP_ORDER = ("name", "title", "version", "source", "description", "codes")
#: Column order inside a code entry; other wire columns come after ``ecase``.
_FIRST_COLUMNS = ("canonical", WIRE_COLUMN)
_LAST_COLUMNS = ("label_lv", "label_en", "description")
_WIDTH = 100
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words YAML 1.1 (PyYAML) reads as booleans or null when left unquoted.
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none", "~"})


@dataclass(frozen=True)
class PlannedChange:
    """A classifier file, what it holds now, and what it would hold after the sync."""

    path: Path
    diff: ClassifierDiff
    old_text: str
    new_text: str
    new: Classifier
    breaks: tuple[Break, ...] = field(default=())


def _scalar(value: str) -> str:
    if _PLAIN.fullmatch(value) and value.lower() not in _YAML_WORDS:
        return value
    # A JSON string is a valid YAML double-quoted scalar, escapes included.
    return json.dumps(value, ensure_ascii=False)


def _entry(entry: dict[str, str]) -> list[str]:
    """One code entry as a flow mapping, wrapped the way the hand-written files are."""
    keys = [k for k in _FIRST_COLUMNS if k in entry]
    keys += [k for k in entry if k not in _FIRST_COLUMNS and k not in _LAST_COLUMNS]
    head = [f"{k}: {_scalar(entry[k])}" for k in keys]
    # Texts are always quoted, as in the hand-written files; codes only when they must be.
    tail = [f"{k}: {json.dumps(entry[k], ensure_ascii=False)}" for k in _LAST_COLUMNS if k in entry]
    one_line = "  - {" + ", ".join(head + tail) + "}"
    if len(one_line) <= _WIDTH or not tail:
        return [one_line]
    # Codes first, then the texts on continuation lines: one line, or one line each.
    lines = ["  - {" + ", ".join(head) + ","]
    texts = "     " + ", ".join(tail) + "}"
    if len(texts) <= _WIDTH:
        return [*lines, texts]
    return lines + [f"     {t}," for t in tail[:-1]] + [f"     {tail[-1]}}}"]


def _header(text: str) -> list[str]:
    """The leading comment block (and blank lines) of a file, kept as written."""
    lines: list[str] = []
    for line in text.splitlines():
        if line.strip() == "" or line.lstrip().startswith("#"):
            lines.append(line)
        else:
            break
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def load_text(path: Path) -> tuple[str, dict[str, Any]]:
    """A classifier file's text and its parsed YAML; ConfigError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("codes"), list):
        raise ConfigError(f"{path}: not a classifier file")
    return text, data


def _new_data(data: dict[str, Any], diff: ClassifierDiff) -> dict[str, Any]:
    by_wire: dict[str, dict[str, str]] = {}
    for entry in data["codes"]:
        if isinstance(entry, dict) and isinstance(entry.get(WIRE_COLUMN), str):
            by_wire[entry[WIRE_COLUMN]] = entry
    proposed = diff.proposed()
    codes: list[dict[str, str]] = []
    for c in diff.current_codes():
        old = by_wire.get(c.code)
        if old is not None:
            entry = {**old, "label_lv": c.label_lv, "label_en": c.label_en}
        else:
            entry = {
                "canonical": proposed[c.code],
                WIRE_COLUMN: c.code,
                "label_lv": c.label_lv,
                "label_en": c.label_en,
            }
        codes.append(entry)
    out = {**data, "version": diff.new_version, "codes": codes}
    out.setdefault("source", diff.source)
    return out


def _render_fresh(text: str, new: dict[str, Any]) -> str:
    """The whole file written anew: comment header, top-level keys, one code per entry."""
    lines = _header(text)
    keys = [k for k in _TOP_ORDER if k in new] + [k for k in new if k not in _TOP_ORDER]
    for key in keys:
        value = new[key]
        if key == "codes":
            lines.append("codes:")
            for entry in value:
                lines.extend(_entry(entry))
        elif key == "version":
            # Always quoted: YAML would read 2026.1 as a float.
            lines.append(f"version: {json.dumps(value)}")
        else:
            dumped = yaml.safe_dump({key: value}, allow_unicode=True, sort_keys=False, width=100)
            lines.append(dumped.rstrip("\n"))
    return "\n".join(lines) + "\n"


def _render_in_place(text: str, data: dict[str, Any], new: dict[str, Any]) -> str | None:
    """``text`` with the version replaced and the code entries edited; None if not possible."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    nodes = {k.value: v for k, v in root.value if isinstance(k, yaml.ScalarNode)}
    keys = {k.value: k for k, _ in root.value if isinstance(k, yaml.ScalarNode)}
    codes, version = nodes.get("codes"), nodes.get("version")
    if (
        not isinstance(codes, yaml.SequenceNode)
        or codes.flow_style
        or len(codes.value) != len(data["codes"])
        or not isinstance(version, yaml.ScalarNode)
        or "source" not in nodes
    ):
        return None
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    # Each entry owns its own lines plus the comment or blank lines just above it.
    chunks: dict[str, tuple[dict[str, Any], str, str]] = {}
    prev_end = keys["codes"].start_mark.line
    for entry, item in zip(data["codes"], codes.value, strict=True):
        start = item.start_mark.line
        end = item.end_mark.line if item.end_mark.column > 0 else item.end_mark.line - 1
        if start <= prev_end or not isinstance(entry, dict):
            return None  # two entries on one line, or something stranger
        lead = "".join(lines[prev_end + 1 : start])
        body = "".join(lines[start : end + 1])
        chunks[str(entry.get(WIRE_COLUMN))] = (
            entry,
            lead,
            body if body.endswith("\n") else body + "\n",
        )
        prev_end = end
    region_start = offsets[keys["codes"].start_mark.line + 1]
    region_end = offsets[prev_end + 1]
    out: list[str] = []
    for entry in new["codes"]:
        old = chunks.get(entry[WIRE_COLUMN])
        if old is not None and old[0] == entry:
            out.append(old[1] + old[2])
        else:
            out.append((old[1] if old else "") + "\n".join(_entry(entry)) + "\n")
    quoted = json.dumps(new["version"])
    start, end = version.start_mark.index, version.end_mark.index
    head, tail = text[:region_start], text[region_end:]
    if end <= region_start:
        head = head[:start] + quoted + head[end:]
    elif start >= region_end:
        tail = tail[: start - region_end] + quoted + tail[end - region_end :]
    else:
        return None
    return head + "".join(out) + tail


def render(text: str, data: dict[str, Any], diff: ClassifierDiff) -> tuple[str, dict[str, Any]]:
    """The new file text for ``diff``, and the data it must load back as."""
    new = _new_data(data, diff)
    edited = _render_in_place(text, data, new)
    if edited is not None:
        try:
            if yaml.safe_load(edited) == new:
                return edited, new
        except yaml.YAMLError:
            pass  # a layout the entry edits do not fit (another indentation): write it anew
    return _render_fresh(text, new), new


def plan(path: Path, diff: ClassifierDiff) -> PlannedChange:
    """Render the change for ``diff`` of the classifier file at ``path`` and load it back.

    ConfigError if the result would not load, or would not hold exactly what was rendered:
    then nothing may be written.
    """
    text, data = load_text(path)
    new_text, expected = render(text, data, diff)
    if yaml.safe_load(new_text) != expected:
        raise ConfigError(f"{path}: the regenerated file does not read back as intended")
    with tempfile.TemporaryDirectory(prefix="plusgw-classifier-") as tmp:
        probe = Path(tmp) / path.name
        probe.write_text(new_text, encoding="utf-8")
        try:
            new = load_classifier(probe)
        except ConfigError as exc:
            raise ConfigError(f"{path}: the new version would not load: {exc.message}") from exc
    return PlannedChange(path=path, diff=diff, old_text=text, new_text=new_text, new=new)


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text``: temp file in the same directory, fsync, rename."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # The rename itself is durable only once the directory entry is on disk.
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def journal_detail(change: PlannedChange, *, forced: bool) -> str:
    """The journal entry's detail: versions, counts, proposals, and what was forced."""
    detail = change.diff.summary()
    if change.diff.added:
        detail += "; proposed canonical codes " + ", ".join(
            f"{a.code}={a.canonical}" for a in change.diff.added
        )
    if forced and change.breaks:
        kinds = sorted({b.kind for b in change.breaks})
        detail = f"FORCED over {len(change.breaks)} break(s) ({', '.join(kinds)}); " + detail
    return detail[:2000]


def apply_change(change: PlannedChange, store: Store, *, actor: str, forced: bool) -> None:
    """Write the new file and journal it; ConfigError if the file changed since the plan.

    With breaks, only ``forced`` gets this far (the caller decides); the journal entry says so.
    """
    if change.breaks and not forced:
        raise ConfigError(f"{change.path}: {len(change.breaks)} break(s) block applying")
    try:
        current = change.path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{change.path}: cannot read: {exc}") from exc
    if current != change.old_text:
        # Someone edited the file after the diff was shown: what was reviewed is stale.
        raise ConfigError(f"{change.path}: changed since the diff was made; run sync again")
    try:
        _write_atomically(change.path, change.new_text)
    except OSError as exc:
        raise ConfigError(f"{change.path}: cannot write: {exc}") from exc
    try:
        store.journal.append(
            direction="local",
            partner="ecase",
            operation="classifiers sync",
            status=JOURNAL_STATUS,
            actor=actor[:64],
            detail=journal_detail(change, forced=forced),
            # The new file itself, so the journal shows exactly what was applied.
            payload=change.new_text.encode("utf-8"),
        )
    except BaseException:
        _write_atomically(change.path, change.old_text)
        raise
