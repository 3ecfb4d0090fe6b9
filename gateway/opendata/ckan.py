"""Publication to CKAN (data.gov.lv) through ckanapi: one data set per topic, one resource per
period, a period whole or not at all.

For a release (every staged set of one period):

1. **Preflight**: the organisation exists; each topic's CKAN data set is read (created, empty,
   the first time). Nothing of the period is written yet.
2. **Publish**: per set, the period's resource (named after the period, ``2026-10``) is added
   with ``package_revise`` (``update__resources__extend`` plus the file as
   ``update__resources__-1__upload``), matching the data set's ``metadata_modified`` so a
   concurrent change is a 409 instead of a lost update. ``package_update`` is never used: it
   drops every resource the call leaves out. A resource already there with the same SHA-256
   is left alone (idempotent); one with other content is replaced only when forced.
3. **All or nothing**: if any set fails, the resources this run added are deleted again
   (``resource_delete``) and the error propagates, so the job retries the whole period later.
   A retry skips what is already there, so a period ends up published once and whole.

ckanapi's errors are mapped at this boundary: CKAN unreachable, HTTP 5xx and a 409 on the
``match`` are retryable; other validation errors, 403 and a changed period without force are
permanent.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import requests
import structlog
from ckanapi import RemoteCKAN
from ckanapi.errors import CKANAPIError, NotAuthorized, NotFound, ValidationError

from gateway import __version__
from gateway.errors import PartnerRejectedError, PartnerUnavailableError, PermanentError
from gateway.opendata.build import Release
from gateway.opendata.datasets import DataSetInfo
from gateway.opendata.package import DataFile

__all__ = ["CkanPublisher", "PeriodChangedError", "dataset_name"]

log = structlog.get_logger(__name__)
_PARTNER = "ckan"


class PeriodChangedError(PermanentError):
    """The period is published with other content; republishing needs --force."""

    code = "OPENDATA_PERIOD_CHANGED"


def dataset_name(info: DataSetInfo) -> str:
    """The CKAN name (stable URL part) of a topic: ``vpd-ds1-active-clients``."""
    return f"vpd-{info.slug}"


class CkanPublisher:
    """Publishes releases to one CKAN through its action API."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        organization: str,
        timeout: float,
        publisher: str,
        contact_email: str,
        base_uri: str,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.organization = organization
        self.timeout = timeout
        self.publisher = publisher
        self.contact_email = contact_email
        self.base_uri = base_uri.rstrip("/")
        self._ckan = RemoteCKAN(
            self.url,
            apikey=api_key,
            user_agent=f"plus-gateway/{__version__} (ckanapi)",
            session=session,
        )

    @classmethod
    def from_settings(cls, opendata: Any) -> CkanPublisher:
        """A publisher for ``opendata.ckan`` (OpendataSettings)."""
        ckan = opendata.ckan
        return cls(
            ckan.url,
            api_key=ckan.api_key.get_secret_value() if ckan.api_key else None,
            organization=ckan.organization,
            timeout=ckan.timeout,
            publisher=opendata.publisher,
            contact_email=opendata.contact_email,
            base_uri=opendata.base_uri,
        )

    def close(self) -> None:
        """Close the HTTP session."""
        self._ckan.close()

    # -- the wire ------------------------------------------------------------------------

    def _call(self, action: str, data: dict[str, Any], files: dict[str, Any] | None = None) -> Any:
        try:
            return self._ckan.call_action(
                action, data, files=files, requests_kwargs={"timeout": self.timeout}
            )
        except NotFound:
            raise
        except ValidationError as exc:
            errors = getattr(exc, "error_dict", {}) or {}
            if "match" in errors:
                # Someone changed the data set between our read and our write: read again.
                raise PartnerUnavailableError(
                    f"CKAN {action}: the data set changed meanwhile (409)",
                    partner=_PARTNER,
                    operation=action,
                ) from exc
            fields = sorted(k for k in errors if not k.startswith("__"))
            raise PartnerRejectedError(
                f"CKAN {action} refused: invalid {', '.join(fields) or 'request'} (409)",
                partner=_PARTNER,
                operation=action,
            ) from exc
        except NotAuthorized as exc:
            raise PartnerRejectedError(
                f"CKAN {action}: not authorised (403); check opendata.ckan.api_key",
                partner=_PARTNER,
                operation=action,
            ) from exc
        except CKANAPIError as exc:
            # 5xx pages and anything CKAN's controller did not describe: transient.
            raise PartnerUnavailableError(
                f"CKAN {action} failed: the portal answered an error (HTTP 5xx or not CKAN)",
                partner=_PARTNER,
                operation=action,
            ) from exc
        except requests.RequestException as exc:
            raise PartnerUnavailableError(
                f"CKAN {action}: {type(exc).__name__}", partner=_PARTNER, operation=action
            ) from exc

    # -- publishing ----------------------------------------------------------------------

    def _package(self, info: DataSetInfo) -> dict[str, Any]:
        name = dataset_name(info)
        try:
            package: dict[str, Any] = self._call("package_show", {"id": name})
            return package
        except NotFound:
            pass
        created: dict[str, Any] = self._call(
            "package_create",
            {
                "name": name,
                "title": f"{info.title_lv} ({info.title_en})",
                "notes": (
                    f"{info.description}\n\nOne resource per period (YYYY-MM monthly, YYYY "
                    "yearly). Counts from 1 to the suppression threshold, and the cells that "
                    "would reveal them, are empty with flag 'c'. Codes are explained in each "
                    "period's datapackage.json and codes.csv. Legal basis: Freedom of "
                    "Information Law s.10."
                ),
                "owner_org": self.organization,
                "license_id": "cc-by",
                "author": self.publisher,
                "maintainer": self.publisher,
                "maintainer_email": self.contact_email,
                "url": f"{self.base_uri}/{info.slug}",
                "extras": [
                    {"key": "frequency", "value": "monthly and yearly"},
                    {"key": "uri", "value": f"{self.base_uri}/{info.slug}"},
                ],
                "resources": [],
            },
        )
        log.info("CKAN data set created", dataset=name)
        return created

    def _resource_fields(self, f: DataFile) -> dict[str, Any]:
        return {
            "name": f.period,
            "description": f"{f.info.title_en}, {f.period}; {f.suppressed} cell(s) suppressed",
            "format": "CSV",
            "mimetype": "text/csv",
            "hash": f.sha256,
            "period": f.period,
            "uri": f"{self.base_uri}/{f.info.slug}/{f.period}/{f.info.file}",
        }

    def publish(
        self,
        release: Release,
        *,
        force: bool = False,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> dict[str, Any]:
        """Publish every set of ``release``, whole or not at all (module docstring)."""
        total = len(release.files)
        self._call("organization_show", {"id": self.organization})
        plans: list[tuple[DataFile, dict[str, Any], dict[str, Any] | None]] = []
        for f in release.files:
            package = self._package(f.info)
            existing = next(
                (r for r in package.get("resources", []) if r.get("name") == f.period), None
            )
            if existing is not None and existing.get("hash") != f.sha256 and not force:
                raise PeriodChangedError(
                    f"{dataset_name(f.info)} {f.period} is published with other content; "
                    "republish with --force (journaled)",
                    partner=_PARTNER,
                )
            plans.append((f, package, existing))
        added: list[str] = []
        outcome: dict[str, str] = {}
        try:
            for done, (f, package, existing) in enumerate(plans):
                if progress:
                    progress(done, total, f.info.slug)
                name = dataset_name(f.info)
                if existing is not None and existing.get("hash") == f.sha256:
                    outcome[name] = "unchanged"
                    continue
                upload = (f.info.file, io.BytesIO(f.csv))
                if existing is None:
                    revised = self._call(
                        "package_revise",
                        {
                            "match__name": name,
                            "match__metadata_modified": package["metadata_modified"],
                            "update__resources__extend": json.dumps([self._resource_fields(f)]),
                        },
                        files={"update__resources__-1__upload": upload},
                    )
                    added.append(revised["package"]["resources"][-1]["id"])
                    outcome[name] = "added"
                else:
                    key = str(existing["id"])[:8]
                    self._call(
                        "package_revise",
                        {
                            "match__name": name,
                            "match__metadata_modified": package["metadata_modified"],
                            f"update__resources__{key}": json.dumps(self._resource_fields(f)),
                        },
                        files={f"update__resources__{key}__upload": upload},
                    )
                    outcome[name] = "replaced"
        except Exception:
            self._undo(added)
            raise
        if progress:
            progress(total, total, "published")
        return {"period": release.period, "sets": outcome, "url": self.url}

    def _undo(self, added: list[str]) -> None:
        """Delete what this run added, so the period is not left half published."""
        for resource_id in reversed(added):
            try:
                self._call("resource_delete", {"id": resource_id})
            except Exception as exc:  # best effort: the retry completes the period anyway
                log.warning(
                    "could not withdraw a resource of a failed publication",
                    resource=resource_id,
                    error=type(exc).__name__,
                )
