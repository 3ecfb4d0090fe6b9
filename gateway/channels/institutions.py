"""Institutions as data: who they are on the wire, what they send, receive and answer.

Built once at start from ``institutions:`` in the configuration. Nothing in the code names an
institution: the pipeline asks this directory who a header's ``client`` is, who receives a
message type, and whose trust store holds a signing certificate.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from gateway.channels.header import format_identifier, parse_identifier
from gateway.config import Settings
from gateway.errors import AddresseeNotAllowedError, ConfigError
from gateway.signing import TrustStore

__all__ = ["Directory", "Institution"]


@dataclass(frozen=True)
class Institution:
    """One configured institution, with its trust store loaded."""

    name: str
    title: str
    #: ``ecase`` or ``direct``.
    channel: str
    #: X-Road style member identifier (instance, class, code, subsystem).
    member: tuple[str, ...]
    #: Where its messages go: the platform's endpoint, or its own for ``direct``.
    endpoint: str
    sends: frozenset[str]
    receives: frozenset[str]
    answers: frozenset[str]
    trust: TrustStore

    @property
    def member_id(self) -> str:
        """The member identifier as text (``LV/GOV/90001672698/TIS``)."""
        return format_identifier(self.member)


class Directory:
    """Every institution, indexed by name and by member identifier."""

    def __init__(self, institutions: list[Institution]) -> None:
        self._by_name = {i.name: i for i in institutions}
        self._by_member: dict[tuple[str, ...], Institution] = {}
        for i in institutions:
            other = self._by_member.get(i.member)
            if other is not None:
                raise ConfigError(
                    f"institutions.{i.name}.member: {i.member_id} is already {other.name}'s"
                )
            self._by_member[i.member] = i

    @classmethod
    def from_settings(cls, settings: Settings, known_types: frozenset[str]) -> Directory:
        """Load trust stores and check every named message type exists in the contract."""
        out = []
        for name, cfg in settings.institutions.items():
            for key, types in (("sends", cfg.sends), ("receives", cfg.receives)):
                unknown = sorted(set(types) - known_types)
                if unknown:
                    raise ConfigError(
                        f"institutions.{name}.{key}: unknown message type {unknown[0]!r}"
                    )
            out.append(
                Institution(
                    name=name,
                    title=cfg.title,
                    channel=cfg.channel,
                    member=parse_identifier(
                        cfg.member, service=False, key=f"institutions.{name}.member"
                    ),
                    endpoint=cfg.endpoint if cfg.channel == "direct" else settings.ecase.endpoint,  # type: ignore[arg-type]
                    sends=frozenset(cfg.sends),
                    receives=frozenset(cfg.receives),
                    answers=frozenset(cfg.answers),
                    trust=TrustStore.from_files(
                        list(cfg.trust.certificates),
                        cfg.trust.ca,
                        max_certificates=settings.xml.max_certificates,
                        accept_legacy_uri=settings.signing.accept_legacy_uri,
                    ),
                )
            )
        return cls(out)

    def all(self) -> list[Institution]:
        """Every institution, by name."""
        return [self._by_name[k] for k in sorted(self._by_name)]

    def get(self, name: str) -> Institution:
        """Institution ``name``; AddresseeNotAllowedError (422 at ``addressee``) if unknown."""
        try:
            return self._by_name[name]
        except KeyError:
            raise AddresseeNotAllowedError(
                f"no institution {name!r} is configured",
                details=[{"path": "addressee", "message": "unknown institution"}],
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def by_member(self, member: tuple[str, ...]) -> Institution | None:
        """The institution whose identifier is ``member``, if any."""
        return self._by_member.get(tuple(member))

    def receivers(self, message_type: str) -> list[Institution]:
        """Institutions that receive ``message_type``, by name."""
        return [i for i in self.all() if message_type in i.receives]

    def answering(self, query: str) -> list[Institution]:
        """Institutions that answer the synchronous query ``query``, by name."""
        return [i for i in self.all() if query in i.answers]

    def trusting(self, element: etree._Element) -> list[Institution]:
        """Institutions whose trust store holds the certificate that signed ``element``.

        Decided on the certificate alone (no cryptography): used only to name the real
        signer when a message claims another sender.
        """
        return [i for i in self.all() if i.trust.trusts_signer(element)]
