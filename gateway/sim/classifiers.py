"""A simulated E-case shared-classifier service (the contract in docs/CLASSIFIERS.md).

By default it serves the local classifier files that have a ``source`` as the remote state, so
``plus-gateway classifiers sync`` against a fresh simulator reports everything in sync. Tests
and demos publish other versions through the control endpoints::

    GET    /classifiers                  [{source, version}]
    GET    /classifiers/{source}         {source, version, title, codes: [...]}
    PUT    /sim/classifiers/{source}     publish a version (the same JSON as GET returns)
    DELETE /sim/classifiers/{source}     withdraw a code list (GET answers 404)
    POST   /sim/classifiers/reset        back to the local files

:func:`create_classifiers_router` returns an APIRouter with these full paths, to be mounted
(``app.include_router``) in the E-case platform simulator or in a test's own app.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from gateway.classifiers.diff import WIRE_COLUMN
from gateway.classifiers.remote import ContractError, RemoteClassifier, RemoteCode
from gateway.errors import ConfigError
from gateway.mapping.registry import CLASSIFIERS_DIR
from gateway.mapping.spec import Classifier, load_classifier

__all__ = ["ClassifierCatalogue", "create_classifiers_router", "remote_from_local"]


def remote_from_local(classifier: Classifier) -> RemoteClassifier | None:
    """A local classifier as the service would publish it (None without a source)."""
    if classifier.source is None:
        return None
    wire = classifier.to_wire.get(WIRE_COLUMN, {})
    codes = []
    for canonical in classifier.canonical_codes:
        if canonical not in wire:
            continue
        labels = classifier.labels.get(canonical, {})
        codes.append(
            RemoteCode(
                code=wire[canonical],
                label_lv=labels.get("label_lv") or canonical,
                label_en=labels.get("label_en") or canonical,
            )
        )
    return RemoteClassifier(
        source=classifier.source,
        version=classifier.version,
        title=classifier.title,
        codes=tuple(codes),
    )


class ClassifierCatalogue:
    """What the simulated service publishes: source -> current version; thread-safe."""

    def __init__(self, initial: Callable[[], Iterable[RemoteClassifier]]) -> None:
        self._initial = initial
        self._lock = threading.Lock()
        self._lists: dict[str, RemoteClassifier] = {}
        self.reset()

    @classmethod
    def from_mappings(cls, mappings: Path) -> ClassifierCatalogue:
        """A catalogue serving ``mappings/classifiers/*.yaml`` (read again on every reset)."""

        def load() -> list[RemoteClassifier]:
            found = []
            for path in sorted((Path(mappings) / CLASSIFIERS_DIR).glob("*.yaml")):
                remote = remote_from_local(load_classifier(path))
                if remote is not None:
                    found.append(remote)
            return found

        return cls(load)

    def reset(self) -> None:
        """Back to the initial state (the local files, as they are now)."""
        lists = {r.source: r for r in self._initial()}
        with self._lock:
            self._lists = lists

    def versions(self) -> list[dict[str, str]]:
        """``GET /classifiers``."""
        with self._lock:
            return [{"source": s, "version": r.version} for s, r in sorted(self._lists.items())]

    def get(self, source: str) -> RemoteClassifier | None:
        """The published version of ``source``, or None."""
        with self._lock:
            return self._lists.get(source)

    def publish(self, remote: RemoteClassifier) -> None:
        """Make ``remote`` the current version of its source."""
        with self._lock:
            self._lists[remote.source] = remote

    def withdraw(self, source: str) -> bool:
        """Stop publishing ``source``; False if it was not published."""
        with self._lock:
            return self._lists.pop(source, None) is not None


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_classifiers_router(catalogue: ClassifierCatalogue) -> APIRouter:
    """Routes of the simulated service and its control endpoints (full paths, no prefix)."""
    router = APIRouter(tags=["classifier service (simulated)"])

    @router.get("/classifiers")
    def list_classifiers() -> list[dict[str, str]]:
        return catalogue.versions()

    @router.get("/classifiers/{source}", response_model=None)
    def get_classifier(source: str) -> dict[str, Any] | JSONResponse:
        remote = catalogue.get(source)
        if remote is None:
            return _error(404, "CLASSIFIER_UNKNOWN", f"no code list {source!r}")
        return remote.to_json()

    @router.put("/sim/classifiers/{source}", response_model=None)
    def publish(
        source: str,
        body: dict[str, Any] = Body(...),  # noqa: B008 - FastAPI's idiom
    ) -> dict[str, str] | JSONResponse:
        try:
            remote = RemoteClassifier.from_json({**body, "source": body.get("source", source)})
        except ContractError as exc:
            return _error(422, "CLASSIFIER_INVALID", str(exc))
        if remote.source != source:
            return _error(422, "CLASSIFIER_INVALID", "source in the body differs from the path")
        catalogue.publish(remote)
        return {"source": remote.source, "version": remote.version}

    @router.delete("/sim/classifiers/{source}", response_model=None)
    def withdraw(source: str) -> dict[str, str] | JSONResponse:
        if not catalogue.withdraw(source):
            return _error(404, "CLASSIFIER_UNKNOWN", f"no code list {source!r}")
        return {"source": source, "status": "withdrawn"}

    @router.post("/sim/classifiers/reset", response_model=None)
    def reset() -> dict[str, str] | JSONResponse:
        try:
            catalogue.reset()
        except ConfigError as exc:
            return _error(500, "CLASSIFIER_FILES_INVALID", exc.message)
        return {"status": "reset"}

    return router
