"""A CKAN simulator: the subset of CKAN's action API the publisher uses, faithfully.

A real CKAN needs Solr and PostgreSQL; this one keeps data sets in memory and speaks the same
wire protocol, so the gateway's publisher is tested through the real ckanapi client:

- ``POST /api/action/<action>`` (``/api/3/action/`` too) with a JSON body, or multipart
  form data when files are uploaded (every value a string, JSON where CKAN takes JSON);
  read actions also by ``GET`` with query parameters;
- answers ``{"help", "success": true, "result"}``; errors as CKAN's API controller sends them:
  409 ``Validation Error`` with field errors, 404 ``Not Found Error``, 403 ``Authorization
  Error``, 400 for a body that is not JSON, and 500 as an HTML page (ckanapi maps that one
  to ``CKANAPIError``);
- actions: ``status_show``, ``package_list``, ``package_show``, ``package_create``,
  ``package_revise`` (``match``/``match__*``, ``filter``, ``update``/``update__*`` with
  ``extend``, index and id-prefix keys, uploads as ``update__resources__<key>__upload``),
  ``resource_delete``, ``organization_show``, ``organization_create``; uploaded files are
  served at ``/dataset/<id>/resource/<rid>/download/<name>``.

Fault injection for tests: ``POST /sim/ckan/faults {"action", "status": 500|409|503,
"times"}`` fails the next calls of an action; ``DELETE /sim/ckan/faults`` clears them;
``GET /sim/ckan/calls`` counts calls by action.
"""

from __future__ import annotations

import copy
import hmac
import json
import re
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import UploadFile

__all__ = ["CkanSimulator", "create_ckan_app", "serve_ckan_simulator", "simulator_for"]

_NAME = re.compile(r"^[a-z0-9_-]{2,100}$")
_READ = {"status_show", "package_list", "package_show", "organization_show"}
_JSON_FIELDS = {"match", "filter", "update", "include"}


class _ActionError(Exception):
    def __init__(self, status: int, kind: str, error: dict[str, Any]) -> None:
        super().__init__(kind)
        self.status, self.kind, self.error = status, kind, error


def _validation(errors: dict[str, Any]) -> _ActionError:
    return _ActionError(409, "Validation Error", errors)


def _not_found(what: str = "Not found") -> _ActionError:
    return _ActionError(404, "Not Found Error", {"message": f"Not found: {what}"})


def _now() -> str:
    # CKAN's timestamps: naive ISO, UTC, microseconds.
    return datetime.now(UTC).replace(tzinfo=None).isoformat()


class CkanSimulator:
    """The in-memory state of the simulated portal."""

    def __init__(self, *, api_key: str | None = None, organizations: tuple[str, ...] = ()) -> None:
        self.api_key = api_key
        self.packages: dict[str, dict[str, Any]] = {}  # id -> package
        self.files: dict[str, tuple[str, bytes]] = {}  # resource id -> (name, bytes)
        self.organizations: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, list[int]] = {}
        self.calls: Counter[str] = Counter()
        self.base_url = ""
        self.lock = threading.Lock()
        for name in organizations:
            self._organization_create({"name": name})

    # -- plumbing ------------------------------------------------------------------------

    def _find(self, name_or_id: str) -> dict[str, Any]:
        for pkg in self.packages.values():
            if name_or_id in (pkg["id"], pkg["name"]) and pkg["state"] == "active":
                return pkg
        raise _not_found("Dataset")

    def call(self, action: str, data: dict[str, Any], authorized: bool) -> Any:
        """Run one action; raises _ActionError the way CKAN's controller reports it."""
        handler = getattr(self, f"_{action}", None)
        if handler is None:
            raise _ActionError(400, "Bad request", {"message": f"Action name not known: {action}"})
        if action not in _READ and not authorized:
            raise _ActionError(403, "Authorization Error", {"message": f"Access denied: {action}"})
        with self.lock:
            result = handler(data)
            return copy.deepcopy(result)

    # -- actions -------------------------------------------------------------------------

    def _status_show(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "ckan_version": "2.10.4",
            "site_title": "CKAN simulator (plus-gateway)",
            "site_url": self.base_url,
            "extensions": [],
        }

    def _package_list(self, data: dict[str, Any]) -> list[str]:
        return sorted(p["name"] for p in self.packages.values() if p["state"] == "active")

    def _package_show(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("id"):
            raise _validation({"id": ["Missing value"]})
        return self._find(str(data["id"]))

    def _organization_show(self, data: dict[str, Any]) -> dict[str, Any]:
        key = str(data.get("id", ""))
        for org in self.organizations.values():
            if key in (org["id"], org["name"]):
                return org
        raise _not_found("Organization")

    def _organization_create(self, data: dict[str, Any]) -> dict[str, Any]:
        name = str(data.get("name", ""))
        if not _NAME.match(name):
            raise _validation(
                {
                    "name": [
                        "Must be purely lowercase alphanumeric (ascii) "
                        "characters and these symbols: -_"
                    ]
                }
            )
        if any(o["name"] == name for o in self.organizations.values()):
            raise _validation({"name": ["Group name already exists in database"]})
        org = {
            "id": str(uuid.uuid4()),
            "name": name,
            "title": data.get("title", name),
            "type": "organization",
            "is_organization": True,
            "state": "active",
            "created": _now(),
        }
        self.organizations[org["id"]] = org
        return org

    def _package_create(self, data: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        name = data.get("name")
        if not name:
            errors["name"] = ["Missing value"]
        elif not _NAME.match(str(name)):
            errors["name"] = [
                "Must be purely lowercase alphanumeric (ascii) characters and these symbols: -_"
            ]
        elif any(p["name"] == name for p in self.packages.values()):
            errors["name"] = ["That URL is already in use."]
        owner = data.get("owner_org")
        org = None
        if owner:
            org = next(
                (o for o in self.organizations.values() if owner in (o["id"], o["name"])), None
            )
            if org is None:
                errors["owner_org"] = ["Organization does not exist"]
        if errors:
            raise _validation(errors)
        now = _now()
        pkg: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "name": name,
            "title": data.get("title") or name,
            "type": "dataset",
            "state": "active",
            "private": bool(data.get("private", False)),
            "owner_org": org["id"] if org else None,
            "organization": copy.deepcopy(org),
            "metadata_created": now,
            "metadata_modified": now,
            "extras": list(data.get("extras") or []),
            "tags": list(data.get("tags") or []),
            "resources": [],
        }
        for key in (
            "notes",
            "url",
            "author",
            "author_email",
            "maintainer",
            "maintainer_email",
            "license_id",
            "version",
        ):
            pkg[key] = data.get(key)
        for resource in data.get("resources") or []:
            pkg["resources"].append(self._new_resource(pkg, resource))
        pkg["num_resources"] = len(pkg["resources"])
        self.packages[pkg["id"]] = pkg
        return pkg

    def _new_resource(self, pkg: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        now = _now()
        resource = {
            "id": str(uuid.uuid4()),
            "package_id": pkg["id"],
            "name": None,
            "description": None,
            "format": "",
            "url": "",
            "url_type": None,
            "hash": "",
            "size": None,
            "mimetype": None,
            "created": now,
            "last_modified": None,
            "state": "active",
        }
        resource.update({k: v for k, v in fields.items() if k != "upload"})
        if isinstance(fields.get("upload"), tuple):
            self._attach(pkg, resource, fields["upload"])
        return resource

    def _attach(
        self, pkg: dict[str, Any], resource: dict[str, Any], upload: tuple[str, bytes]
    ) -> None:
        filename, content = upload
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "file"
        self.files[resource["id"]] = (safe, content)
        resource["url_type"] = "upload"
        resource["url"] = (
            f"{self.base_url}/dataset/{pkg['id']}/resource/{resource['id']}/download/{safe}"
        )
        resource["size"] = len(content)
        resource["last_modified"] = _now()

    def _package_revise(self, data: dict[str, Any]) -> dict[str, Any]:
        match = dict(data.get("match") or {})
        flat_match = {k[len("match__") :]: v for k, v in data.items() if k.startswith("match__")}
        name_or_id = (
            flat_match.get("id") or match.get("id") or flat_match.get("name") or match.get("name")
        )
        if not name_or_id:
            raise _validation({"match__id": ["Missing value"]})
        pkg = self._find(str(name_or_id))
        orig = copy.deepcopy(pkg)
        unmatched = [k for k, v in match.items() if orig.get(k) != v]
        unmatched += [k for k, v in sorted(flat_match.items()) if str(orig.get(k)) != str(v)]
        if unmatched:
            raise _validation({"match": unmatched})
        for pattern in _as_list(data.get("filter")):
            self._filter(orig, pattern)
        if isinstance(data.get("update"), dict):
            for key, value in data["update"].items():
                if key == "resources":
                    raise _validation({"update": ["resources: use update__resources__ keys"]})
                orig[key] = value
        flat_update = {k[len("update__") :]: v for k, v in data.items() if k.startswith("update__")}
        # CKAN applies __extend keys first, so files can attach to resources added in the
        # same call (update__resources__-1__upload).
        for key in sorted(flat_update, key=lambda k: (not k.endswith("extend"), k)):
            self._update_key(orig, key, flat_update[key])
        orig["metadata_modified"] = _now()
        resources = []
        for fields in orig["resources"]:
            upload = fields.pop("upload", None)
            if "id" not in fields or fields["id"] not in {r["id"] for r in pkg["resources"]}:
                resource = self._new_resource(pkg, fields)
            else:
                resource = fields
            if isinstance(upload, tuple):
                self._attach(pkg, resource, upload)
            resources.append(resource)
        orig["resources"] = resources
        orig["num_resources"] = len(resources)
        self.packages[pkg["id"]] = orig
        return {"package": orig}

    def _resource_index(self, resources: list[dict[str, Any]], key: str) -> int:
        if re.fullmatch(r"-?\d+", key):
            index = int(key)
            if -len(resources) <= index < len(resources):
                return index % len(resources)
            raise _validation({"update": [f"resources__{key}: index out of range"]})
        if len(key) >= 5:
            found = [i for i, r in enumerate(resources) if str(r.get("id", "")).startswith(key)]
            if len(found) == 1:
                return found[0]
        raise _validation({"update": [f"resources__{key}: no unique resource with that id"]})

    def _update_key(self, pkg: dict[str, Any], key: str, value: Any) -> None:
        parts = key.split("__")
        if parts[0] != "resources":
            if len(parts) != 1:
                raise _validation({key: ["only resources take nested keys here"]})
            pkg[key] = value
            return
        resources = pkg.setdefault("resources", [])
        if parts[1:] == ["extend"]:
            if not isinstance(value, list):
                raise _validation({key: ["extend needs a list"]})
            resources.extend(dict(v) for v in value)
            return
        index = self._resource_index(resources, parts[1])
        if len(parts) == 2:
            if not isinstance(value, dict):
                raise _validation({key: ["expected a dict"]})
            resources[index].update(value)
        elif len(parts) == 3:
            resources[index][parts[2]] = value
        else:
            raise _validation({key: ["key too deep"]})

    def _filter(self, pkg: dict[str, Any], pattern: str) -> None:
        if not pattern.startswith("-"):
            return  # "+" patterns protect fields; nothing else is removed here anyway
        parts = pattern[1:].split("__")
        if parts[0] == "resources" and len(parts) == 2:
            index = self._resource_index(pkg.get("resources", []), parts[1])
            del pkg["resources"][index]
        elif len(parts) == 1 and parts[0] not in ("id", "type"):
            pkg.pop(parts[0], None)

    def _resource_delete(self, data: dict[str, Any]) -> None:
        rid = str(data.get("id", ""))
        for pkg in self.packages.values():
            for i, resource in enumerate(pkg["resources"]):
                if resource["id"] == rid:
                    del pkg["resources"][i]
                    pkg["num_resources"] = len(pkg["resources"])
                    pkg["metadata_modified"] = _now()
                    self.files.pop(rid, None)
                    return None
        raise _not_found("Resource")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _json_or_string(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def create_ckan_app(sim: CkanSimulator) -> FastAPI:
    """The simulator's HTTP application."""
    app = FastAPI(title="CKAN simulator", docs_url=None, redoc_url=None)

    def answer(request: Request, action: str, result: Any) -> JSONResponse:
        help_url = f"{str(request.base_url).rstrip('/')}/api/3/action/help_show?name={action}"
        return JSONResponse({"help": help_url, "success": True, "result": result})

    def error(request: Request, action: str, exc: _ActionError) -> Response:
        if exc.status == 500:
            return HTMLResponse("<html><body><h1>Internal Server Error</h1></body></html>", 500)
        help_url = f"{str(request.base_url).rstrip('/')}/api/3/action/help_show?name={action}"
        body = {"help": help_url, "success": False, "error": {"__type": exc.kind, **exc.error}}
        return JSONResponse(body, status_code=exc.status)

    async def action_endpoint(action: str, request: Request) -> Response:
        sim.calls[action] += 1
        sim.base_url = str(request.base_url).rstrip("/")
        planned = sim.faults.get(action) or sim.faults.get("*")
        if planned:
            status = planned.pop(0)
            if status == 409:
                return error(request, action, _validation({"match": ["metadata_modified"]}))
            if status == 503:
                return Response("Service Unavailable", status_code=503)
            return error(request, action, _ActionError(500, "", {}))
        data: dict[str, Any] = {}
        if request.method == "GET":
            data = {k: _json_or_string(v) for k, v in request.query_params.items()}
        elif request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    # update__resources__<key>__upload: the file of that resource.
                    data[key] = (value.filename or "upload", await value.read())
                else:
                    data[key] = (
                        _json_or_string(value)
                        if (key in _JSON_FIELDS or key.startswith(("match__", "update__")))
                        else value
                    )
        else:
            body = await request.body()
            if body:
                try:
                    data = json.loads(body)
                except ValueError:
                    return JSONResponse(
                        {
                            "success": False,
                            "error": {"__type": "Bad request", "message": "JSON Error: not JSON"},
                        },
                        status_code=400,
                    )
                if not isinstance(data, dict):
                    return JSONResponse(
                        {
                            "success": False,
                            "error": {
                                "__type": "Bad request",
                                "message": "Bad request - JSON Error: "
                                "Request data JSON decoded to a list",
                            },
                        },
                        status_code=400,
                    )
        given = request.headers.get("authorization") or request.headers.get("x-ckan-api-key")
        authorized = sim.api_key is None or (
            given is not None and hmac.compare_digest(given, sim.api_key)
        )
        try:
            result = sim.call(action, data, authorized)
        except _ActionError as exc:
            return error(request, action, exc)
        return answer(request, action, result)

    for prefix in ("/api/action", "/api/3/action"):
        app.add_api_route(f"{prefix}/{{action}}", action_endpoint, methods=["GET", "POST"])

    @app.get("/dataset/{package_id}/resource/{resource_id}/download/{filename}")
    def download(package_id: str, resource_id: str, filename: str) -> Response:
        found = sim.files.get(resource_id)
        if found is None or found[0] != filename:
            return Response("Not found", status_code=404)
        return Response(found[1], media_type="text/csv; charset=utf-8")

    @app.post("/sim/ckan/faults")
    async def add_fault(request: Request) -> dict[str, Any]:
        body = await request.json()
        statuses = [int(body.get("status", 500))] * int(body.get("times", 1))
        sim.faults.setdefault(str(body.get("action", "*")), []).extend(statuses)
        return {"faults": sim.faults}

    @app.delete("/sim/ckan/faults")
    def clear_faults() -> dict[str, Any]:
        sim.faults.clear()
        return {"faults": {}}

    @app.get("/sim/ckan/calls")
    def calls() -> dict[str, int]:
        return dict(sim.calls)

    return app


def _host_port(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def simulator_for(settings: Any) -> tuple[FastAPI, str, int]:
    """The CKAN simulator at ``opendata.ckan.url`` with its key and organisation."""
    ckan = settings.opendata.ckan
    sim = CkanSimulator(
        api_key=ckan.api_key.get_secret_value() if ckan.api_key else None,
        organizations=(ckan.organization,),
    )
    host, port = _host_port(ckan.url)
    return create_ckan_app(sim), host, port


def serve_ckan_simulator(settings: Any) -> None:
    """``plus-gateway sim ckan``: the simulator in the foreground."""
    import uvicorn

    from gateway.logging import configure_logging

    configure_logging(settings.logging.environment, settings.logging.level)
    app, host, port = simulator_for(settings)
    print(f"CKAN simulator on http://{host}:{port}/api/3/action/")
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None)).run()
