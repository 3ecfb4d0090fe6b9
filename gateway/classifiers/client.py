"""HTTP client of the E-case shared-classifier service (the boundary for ``requests``).

``GET {service_url}`` lists ``[{source, version}]``; ``GET {service_url}/{source}`` returns one
code list (see :mod:`gateway.classifiers.remote` and docs/CLASSIFIERS.md). Transport failures
become the gateway's own errors here, and nothing above this module imports ``requests``:

- connect or read timeout, or a body slower than the timeout: PartnerTimeoutError;
- connection refused or reset, HTTP 5xx: PartnerUnavailableError;
- HTTP 4xx, a body that is not the contract's JSON, or one larger than ``max_bytes``:
  PartnerRejectedError.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import requests

from gateway.classifiers.remote import ContractError, RemoteClassifier, RemoteVersion
from gateway.errors import PartnerRejectedError, PartnerTimeoutError, PartnerUnavailableError

__all__ = ["ClassifierClient"]

#: Errors name the E-case platform as the partner; the operation says which call failed.
PARTNER = "ecase"
_CHUNK = 64 * 1024


class ClassifierClient:
    """Reads code lists from the shared-classifier service; one pooled session per client."""

    def __init__(
        self,
        service_url: str,
        *,
        timeout: float = 5.0,
        max_bytes: int = 2 * 1024 * 1024,
        session: requests.Session | None = None,
    ) -> None:
        self.service_url = service_url.rstrip("/")
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._session = session or requests.Session()
        self._owns_session = session is None

    def close(self) -> None:
        """Close the pooled connections (when the session is ours)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> ClassifierClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def versions(self) -> list[RemoteVersion]:
        """Every code list the service publishes, with its current version."""
        data = self._get_json(self.service_url, "list")
        try:
            return RemoteVersion.list_from_json(data)
        except ContractError as exc:
            raise self._rejected("list", f"invalid classifier list: {exc}") from exc

    def get(self, source: str) -> RemoteClassifier:
        """The current version of code list ``source``; PartnerRejectedError if unknown."""
        operation = f"get {source}"
        data = self._get_json(f"{self.service_url}/{quote(source, safe='')}", operation)
        try:
            remote = RemoteClassifier.from_json(data)
        except ContractError as exc:
            raise self._rejected(operation, f"invalid classifier {source!r}: {exc}") from exc
        if remote.source != source:
            raise self._rejected(operation, f"asked for {source!r}, got {remote.source!r}")
        return remote

    @staticmethod
    def _rejected(operation: str, message: str) -> PartnerRejectedError:
        return PartnerRejectedError(message, partner=PARTNER, operation=f"classifiers {operation}")

    def _get_json(self, url: str, operation: str) -> Any:
        where: dict[str, Any] = {"partner": PARTNER, "operation": f"classifiers {operation}"}
        # The deadline covers the whole body too: a server dripping bytes just under the read
        # timeout would otherwise hold the command for ever.
        deadline = time.monotonic() + self.timeout
        try:
            with self._session.get(
                url,
                timeout=(self.timeout, self.timeout),
                headers={"Accept": "application/json"},
                stream=True,
                allow_redirects=False,
            ) as response:
                status = response.status_code
                if status >= 500:
                    raise PartnerUnavailableError(
                        f"classifier service answered HTTP {status} for {url}", **where
                    )
                if status == 404:
                    raise PartnerRejectedError(f"not published by the service: {url}", **where)
                if status != 200:
                    raise PartnerRejectedError(
                        f"classifier service answered HTTP {status} for {url}", **where
                    )
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise PartnerRejectedError(
                        f"answer of {declared} bytes exceeds the {self.max_bytes}-byte limit",
                        **where,
                    )
                body = bytearray()
                for chunk in response.iter_content(_CHUNK):
                    body.extend(chunk)
                    if len(body) > self.max_bytes:
                        raise PartnerRejectedError(
                            f"answer exceeds the {self.max_bytes}-byte limit", **where
                        )
                    if time.monotonic() > deadline:
                        raise PartnerTimeoutError(
                            f"answer not complete within {self.timeout}s", **where
                        )
        except requests.Timeout as exc:
            raise PartnerTimeoutError(
                f"no answer within {self.timeout}s from {url}", **where
            ) from exc
        except requests.RequestException as exc:
            # Read timeouts while streaming the body arrive as ConnectionError, not Timeout.
            raise PartnerUnavailableError(
                f"classifier service unreachable at {url}: {type(exc).__name__}", **where
            ) from exc
        try:
            return json.loads(bytes(body))
        except ValueError as exc:
            raise PartnerRejectedError(f"answer is not JSON: {exc}", **where) from exc
