"""Which employers may use the employers' e-services, and who counts as a minor.

DEF-03 and ES-09: state and municipal bodies, agencies and capital companies, associations,
foundations, religious organisations, and companies at least 51 % owned by the state or a
municipality. The legal forms are a versioned classifier (``mappings/classifiers/
legal_form.yaml``) and the rule over them is data (``mappings/eservices/entitlement.yaml``),
both read and checked once. Every answer carries a stable reason code::

    ENTITLED_LEGAL_FORM        entitled by its legal form
    ENTITLED_STATE_SHARE       a company at least 51 % state or municipal
    LEGAL_FORM_NOT_ENTITLED    a legal form the law does not entitle
    LEGAL_FORM_UNKNOWN         a legal form the classifier does not know
    STATE_SHARE_BELOW_MINIMUM  a company under 51 % state or municipal
    STATE_SHARE_UNKNOWN        a company whose share PLUS did not give
    STATE_SHARE_INVALID        a share outside 0..100 (or not a number)

Minors (the stricter data scope): public work is for ages 11-18, volunteer companions work
with 14-25-year-olds; the bands are data in the same file (:func:`minor_rule`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import ConfigError
from gateway.mapping.registry import CLASSIFIERS_DIR
from gateway.mapping.spec import Classifier, load_classifier

__all__ = [
    "Entitlement",
    "EntitlementRules",
    "MinorBand",
    "age_on",
    "default_rules",
    "employer_entitled",
    "entitlement",
    "is_minor",
    "load_entitlement_rules",
    "minor_rule",
]

ENTITLEMENT_FILE = Path("eservices") / "entitlement.yaml"
_DEFAULT_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@dataclass(frozen=True)
class Entitlement:
    """The answer for one employer: entitled or not, and why (a stable code)."""

    entitled: bool
    reason: str
    #: The canonical legal form, when the classifier knows it.
    legal_form: str | None = None


@dataclass(frozen=True)
class MinorBand:
    """An age band of the stricter scope: ``from_age <= age < below_age``."""

    name: str
    from_age: int
    below_age: int

    def contains(self, age: int) -> bool:
        """True when ``age`` (in whole years) is in the band."""
        return self.from_age <= age < self.below_age


@dataclass(frozen=True)
class EntitlementRules:
    """The entitlement table over the legal-form classifier, and the minor bands."""

    version: str
    classifier: Classifier
    entitled: frozenset[str]
    with_share: frozenset[str]
    minimum_share: float
    not_entitled: frozenset[str]
    bands: dict[str, MinorBand]

    def canonical(self, legal_form: str) -> str | None:
        """The canonical code of ``legal_form`` (canonical or E-case wire code), or None."""
        if legal_form in self.classifier.canonical_codes:
            return legal_form
        return self.classifier.from_wire.get("ecase", {}).get(legal_form)

    def decide(self, legal_form: str, state_share_percent: float | None) -> Entitlement:
        """The entitlement of an employer of ``legal_form`` with the given state share."""
        code = self.canonical(legal_form) if isinstance(legal_form, str) else None
        if code is None:
            return Entitlement(False, "LEGAL_FORM_UNKNOWN")
        if code in self.entitled:
            return Entitlement(True, "ENTITLED_LEGAL_FORM", code)
        if code not in self.with_share:
            return Entitlement(False, "LEGAL_FORM_NOT_ENTITLED", code)
        if state_share_percent is None:
            return Entitlement(False, "STATE_SHARE_UNKNOWN", code)
        share = state_share_percent
        if (
            isinstance(share, bool)
            or not isinstance(share, (int, float))
            or math.isnan(share)
            or not 0 <= share <= 100
        ):
            return Entitlement(False, "STATE_SHARE_INVALID", code)
        if share >= self.minimum_share:
            return Entitlement(True, "ENTITLED_STATE_SHARE", code)
        return Entitlement(False, "STATE_SHARE_BELOW_MINIMUM", code)


def _codes(path: Path, data: dict[str, Any], key: str, known: tuple[str, ...]) -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: key {key!r} must be a list of legal-form codes")
    for code in value:
        if code not in known:
            raise ConfigError(f"{path}: key {key!r}: {code!r} is not a code of the classifier")
    return value


def load_entitlement_rules(mappings: Path) -> EntitlementRules:
    """Read the entitlement table and its classifier under ``mappings``; ConfigError if bad."""
    path = Path(mappings) / ENTITLEMENT_FILE
    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the entitlement table: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the entitlement table must be a mapping")
    allowed = {
        "version",
        "classifier",
        "entitled",
        "entitled_with_state_share",
        "not_entitled",
        "minor_bands",
    }
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise ConfigError(f"{path}: key 'version' must be a quoted string such as \"2027.1\"")
    name = data.get("classifier")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: key 'classifier' must name a classifier")
    classifier = load_classifier(Path(mappings) / CLASSIFIERS_DIR / f"{name}.yaml")
    known = classifier.canonical_codes
    entitled = _codes(path, data, "entitled", known)
    share = data.get("entitled_with_state_share")
    if not isinstance(share, dict) or set(share) != {"minimum_percent", "legal_forms"}:
        raise ConfigError(
            f"{path}: key 'entitled_with_state_share' must map minimum_percent and legal_forms"
        )
    minimum = share["minimum_percent"]
    if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or not 0 < minimum <= 100:
        raise ConfigError(f"{path}: key 'entitled_with_state_share.minimum_percent' must be 0..100")
    with_share = _codes(path, share, "legal_forms", known)
    never = _codes(path, data, "not_entitled", known)
    seen: dict[str, str] = {}
    for key, codes in (
        ("entitled", entitled),
        ("entitled_with_state_share", with_share),
        ("not_entitled", never),
    ):
        for code in codes:
            if code in seen:
                raise ConfigError(f"{path}: key {key!r}: {code!r} is also in {seen[code]!r}")
            seen[code] = key
    missing = [c for c in known if c not in seen]
    if missing:
        raise ConfigError(
            f"{path}: legal form {missing[0]!r} of classifier {name!r} version "
            f"{classifier.version} has no rule: add it to one of the lists"
        )
    bands: dict[str, MinorBand] = {}
    raw_bands = data.get("minor_bands")
    if not isinstance(raw_bands, dict) or not raw_bands:
        raise ConfigError(f"{path}: key 'minor_bands' must map band names to age ranges")
    for band, raw in raw_bands.items():
        where = f"{path}: key 'minor_bands.{band}'"
        if not isinstance(raw, dict) or set(raw) != {"from_age", "below_age"}:
            raise ConfigError(f"{where} must map from_age and below_age")
        low, high = raw["from_age"], raw["below_age"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) or not (
            0 <= low < high <= 150
        ):
            raise ConfigError(f"{where}: ages must be whole years, from_age < below_age")
        bands[band] = MinorBand(band, low, high)
    return EntitlementRules(
        version=version,
        classifier=classifier,
        entitled=frozenset(entitled),
        with_share=frozenset(with_share),
        minimum_share=float(minimum),
        not_entitled=frozenset(never),
        bands=bands,
    )


@functools.cache
def default_rules(mappings: Path = _DEFAULT_MAPPINGS) -> EntitlementRules:
    """The rules under ``mappings`` (the repository's by default), loaded once per folder."""
    return load_entitlement_rules(mappings)


def entitlement(
    legal_form: str,
    state_share_percent: float | None,
    *,
    rules: EntitlementRules | None = None,
) -> Entitlement:
    """The entitlement of an employer, with its reason code (see the module docstring)."""
    return (rules or default_rules()).decide(legal_form, state_share_percent)


def employer_entitled(
    legal_form: str,
    state_share_percent: float | None,
    *,
    rules: EntitlementRules | None = None,
) -> bool:
    """True when an employer of ``legal_form`` (canonical or E-case code) may use the
    employers' e-services; ``state_share_percent`` is the state or municipal share of its
    capital as PLUS gives it (None: unknown). :func:`entitlement` also says why."""
    return entitlement(legal_form, state_share_percent, rules=rules).entitled


def age_on(birth_date: date, on: date) -> int:
    """Age in whole years on ``on`` (a person born on 29 February ages on 1 March)."""
    years = on.year - birth_date.year
    if (on.month, on.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def minor_rule(band: str, *, rules: EntitlementRules | None = None) -> MinorBand:
    """The age band ``band`` (``public_work``: 11-18, ``companion``: 14-25); KeyError if none."""
    bands = (rules or default_rules()).bands
    if band not in bands:
        raise KeyError(f"no minor band {band!r}; known: {sorted(bands)}")
    return bands[band]


def is_minor(
    birth_date: date,
    on: date,
    *,
    companion: bool = False,
    rules: EntitlementRules | None = None,
) -> bool:
    """True when a person born on ``birth_date`` gets the stricter scope on ``on``.

    ``companion``: the reader is a volunteer companion, whose band is 14-25; otherwise the
    public-work band 11-18 applies. Anyone under the lower age is a minor too (a child).
    """
    band = minor_rule("companion" if companion else "public_work", rules=rules)
    return age_on(birth_date, on) < band.below_age
