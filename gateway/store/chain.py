"""The journal's hash chain: a canonical serialization of an entry and its SHA-256.

Each entry's ``entry_hash`` is the SHA-256 of a canonical JSON document of its fields,
``prev_hash`` (the previous entry's ``entry_hash``) included and the payload itself excluded:
``payload_sha256`` stands for it, so retention can null payloads and the chain still verifies.
Ids are assigned gap-free under the chain lock, so a deleted entry also shows as a gap.

Fields added later (:data:`OPTIONAL_HASHED_FIELDS`) are covered only when set, so entries
written before they existed keep the hash they were written with.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["GENESIS", "HASHED_FIELDS", "OPTIONAL_HASHED_FIELDS", "entry_hash", "sha256_hex"]

#: ``prev_hash`` of the first entry.
GENESIS = "0" * 64

#: The fields covered by ``entry_hash``, in a fixed order (the payload is not one of them).
HASHED_FIELDS = (
    "id",
    "at",
    "direction",
    "partner",
    "operation",
    "message_type",
    "message_id",
    "partner_message_id",
    "correlation_id",
    "status",
    "error_code",
    "detail",
    "actor",
    "payload_sha256",
    "prev_hash",
)

#: Covered by ``entry_hash`` when not None (migration 0004): the size and SHA-256 of a rejected
#: request's whole body, of which the payload keeps only a prefix.
OPTIONAL_HASHED_FIELDS = ("received_size", "received_sha256")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``; the journal keeps hashes so payloads can later be purged."""
    return hashlib.sha256(data).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def entry_hash(entry: Mapping[str, Any]) -> str:
    """Hex SHA-256 over the canonical JSON of ``entry``'s hashed fields."""
    document = {name: _canonical(entry.get(name)) for name in HASHED_FIELDS}
    for name in OPTIONAL_HASHED_FIELDS:
        if entry.get(name) is not None:
            document[name] = _canonical(entry[name])
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
