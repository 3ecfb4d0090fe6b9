"""The universal contract as the simulators load it: once, shared by every institution.

Schemas, mappings, the gateway's identifier on the platform and the samples. Nothing here
knows an institution: what one sends, receives and answers is configuration.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from gateway.channels.ecase import ECASE_HEADER_PROFILE
from gateway.channels.header import parse_identifier
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.mapping import MappingRegistry, MessageMapping
from gateway.soap.wsdl import served_wsdl
from gateway.xml import SchemaRegistry, XmlLimits, parse_xml

__all__ = ["ECASE_CONTRACT", "SimContract"]

#: The ``contract:`` of the business messages every institution speaks.
ECASE_CONTRACT = "ecase"


class SimContract:
    """Schemas (compiled at start), mappings and samples of the universal contract."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ecase = settings.ecase
        self.limits = XmlLimits(max_bytes=settings.xml.max_bytes)
        self.samples = Path(settings.paths.samples)
        self.mappings = MappingRegistry.load(settings.paths.mappings)
        self.schemas = SchemaRegistry(settings.paths.xsd)
        # Compile everything now: the first requests arrive on several threads at once.
        self.schemas.load(ECASE_HEADER_PROFILE.schema)
        for mapping in self.mappings.all():
            if mapping.contract == ECASE_CONTRACT:
                self.schemas.load(mapping.schema)
        self.gateway_id = parse_identifier(
            self.ecase.client_id, service=False, key="ecase.client_id"
        )
        self._samples: dict[str, dict[str, Any]] = {}

    def mapping(self, message_type: str) -> MessageMapping:
        """The mapping of ``message_type``; UnknownOperationError if there is none."""
        return self.mappings.get(message_type)

    def served_wsdl(self, address: str) -> bytes:
        """The WSDL of the side the platform (or a direct institution) serves, at ``address``."""
        return served_wsdl(
            self.ecase.wsdl, service=self.ecase.service, port=self.ecase.port, address=address
        )

    def load_canonical(self, mapping: MessageMapping, path: Path) -> dict[str, Any]:
        """Canonical JSON from ``path``: canonical JSON itself, or a payload XML mapped back."""
        try:
            if path.suffix == ".json":
                data = json.loads(path.read_text(encoding="utf-8"))
            else:
                data = mapping.to_canonical(parse_xml(path.read_bytes(), self.limits))
        except OSError as exc:
            raise ConfigError(f"cannot read sample {path}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc.msg}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a sample must be a JSON object")
        return data

    def sample(self, mapping: MessageMapping) -> dict[str, Any]:
        """A fresh copy of the valid sample of a message type (valid.json, else valid.xml)."""
        found = self._samples.get(mapping.message_type)
        if found is None:
            folder = self.samples / mapping.message_type
            for name in ("valid.json", "valid.xml"):
                if (folder / name).is_file():
                    found = self.load_canonical(mapping, folder / name)
                    break
            else:
                raise ConfigError(f"no valid sample for {mapping.message_type} in {folder}")
            self._samples[mapping.message_type] = found
        return copy.deepcopy(found)
