"""Request and response bodies of the facade (pydantic; published in the OpenAPI document).

Every string is bounded and refuses control characters and lone surrogates (which no database
driver can store), so a malformed value is a 422 naming its path, never a 500. Time values
must carry a time zone: a naive "10:00" is ambiguous across the DST change.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from gateway.registries.personal_code import problem

__all__ = [
    "ApplicationIn",
    "ApplicationOut",
    "AttachmentIn",
    "CertificateIn",
    "DecisionIn",
    "HoursApproveIn",
    "HoursIn",
    "MessageIn",
    "OpportunityIn",
    "OpportunityOut",
    "OrganisationIn",
    "VolunteerIn",
]

Kind = Literal["regular", "on_demand", "one_off"]
KINDS: tuple[str, ...] = ("regular", "on_demand", "one_off")
OrganisationType = Literal[
    "association",
    "foundation",
    "religious_organisation",
    "municipality",
    "state_institution",
    "company",
    "other",
]
Field_ = Literal[
    "social_care",
    "education",
    "culture",
    "environment",
    "sport",
    "health",
    "youth",
    "animal_welfare",
    "community",
    "emergency",
    "justice",
    "other",
]
FIELDS: tuple[str, ...] = Field_.__args__  # type: ignore[attr-defined]


def _printable(value: str) -> str:
    for ch in value:
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            raise ValueError("contains a lone surrogate")
        if (code < 32 and ch not in "\n\t") or code == 0x7F:
            raise ValueError("contains a control character")
    return value


def _no_newline(value: str) -> str:
    if "\n" in value or "\t" in value:
        raise ValueError("must be one line")
    return value


_ONE_LINE = (AfterValidator(_printable), AfterValidator(_no_newline))
Line100 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    *_ONE_LINE,
]
Line200 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    *_ONE_LINE,
]
Text2000 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(_printable),
]
Text5000 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=5000),
    AfterValidator(_printable),
]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,60}$"
    ),
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()-]{5,31}$")]
Url = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=300, pattern=r"^https?://[^\s]{1,290}$"),
]
OrgId = Annotated[str, StringConstraints(pattern=r"^[0-9]{11}$")]
Alias = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=2, max_length=64),
    AfterValidator(_printable),
    AfterValidator(_no_newline),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Contacts(_In):
    """How to reach an organisation (public: it is on every listing)."""

    email: Email | None = None
    phone: Phone | None = None
    address: Line200 | None = None


class Support(_In):
    """Support and resources an organisation gives its volunteers (VOL-05)."""

    training: bool = False
    transport_compensation: bool = False
    insurance: bool = False
    certificates: bool = True


class Testimonial(_In):
    """A volunteer's story (VOL-06), signed with an alias or initials."""

    author: Line100
    text: Text2000


class Motivation(_In):
    """Why volunteer here (VOL-06)."""

    benefits: list[Line200] = Field(default_factory=list, max_length=20)
    testimonials: list[Testimonial] = Field(default_factory=list, max_length=20)


class ContactPerson(_In):
    """Management and team (VOL-07): published by the organisation on its profile."""

    name: Line100
    position: Line100 | None = None
    email: Email | None = None
    phone: Phone | None = None


class Partner(_In):
    """A partner of the organisation (VOL-08)."""

    name: Line200
    kind: Literal["state", "municipal", "other"] = "other"


class OrganisationIn(_In):
    """The organisation profile (VOL-03 to VOL-08)."""

    registration_number: OrgId = Field(
        description="Registration number (11 digits); the token's `organisation` claim"
    )
    name: Line200
    type: OrganisationType
    field: Field_ = Field(description="Field of activity (VOL-04)")
    goals: Text2000 | None = None
    municipality: Line100 | None = None
    contacts: Contacts = Field(default_factory=Contacts)
    contact_channels: list[Line100] = Field(default_factory=list, max_length=10)
    website: Url | None = None
    social_links: list[Url] = Field(default_factory=list, max_length=10)
    support: Support = Field(default_factory=Support)
    motivation: Motivation = Field(default_factory=Motivation)
    contact_persons: list[ContactPerson] = Field(default_factory=list, max_length=20)
    statistics_reports: Text5000 | None = None
    partners: list[Partner] = Field(default_factory=list, max_length=50)
    support_mechanisms: Text2000 | None = None
    working_environment: Text2000 | None = None
    safety_policy: Text5000 | None = None


class OrganisationOut(OrganisationIn):
    """A published organisation profile."""

    model_config = ConfigDict(extra="ignore")

    id: str
    created_at: datetime
    updated_at: datetime


class Place(_In):
    """Where: a city and/or municipality (novads), or digital (VOL-11)."""

    city: Line100 | None = None
    municipality: Line100 | None = None
    digital: bool = False

    @model_validator(mode="after")
    def _somewhere(self) -> Place:
        if not self.digital and not (self.city or self.municipality):
            raise ValueError("give a city or municipality, or digital: true")
        return self


class OpportunityIn(_In):
    """A volunteer opportunity (VOL-10 to VOL-20)."""

    external_ref: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}$")] | None
    ) = Field(None, description="The organisation's own id; imports update by it")
    title: Line200
    place: Place
    starts_at: AwareDatetime | None = Field(None, description="Exact time, or start of a range")
    ends_at: AwareDatetime | None = Field(None, description="End of the range")
    expected_hours: float | None = Field(None, ge=0, le=10_000)
    duties: Text5000
    deadline: AwareDatetime = Field(description="Applications close; then it is archived")
    desired_profile: Text2000 | None = None
    skills: list[Line100] = Field(default_factory=list, max_length=20)
    volunteers_needed: int = Field(ge=1, le=10_000)
    benefits: Text2000 | None = None
    kind: Kind

    @model_validator(mode="after")
    def _range(self) -> OpportunityIn:
        if self.ends_at is not None and self.starts_at is None:
            raise ValueError("ends_at needs starts_at")
        if self.ends_at is not None and self.starts_at and self.ends_at < self.starts_at:
            raise ValueError("ends_at is before starts_at")
        return self


class OrganiserContacts(BaseModel):
    """The organiser of a posting and how to reach it (VOL-20)."""

    id: str
    name: str
    email: str | None = None
    phone: str | None = None
    website: str | None = None


class OpportunityTime(BaseModel):
    """Exact time, a range, and/or expected hours (VOL-12)."""

    starts_at: datetime | None = None
    ends_at: datetime | None = None
    expected_hours: float | None = None


class PlaceOut(BaseModel):
    """Where (VOL-11)."""

    city: str | None = None
    municipality: str | None = None
    digital: bool


class OpportunityOut(BaseModel):
    """A posting as listed: every listing field of VOL-10 to VOL-20 with live counters."""

    id: int
    url: str
    external_ref: str | None = None
    title: str
    place: PlaceOut
    time: OpportunityTime
    duties: str
    deadline: datetime
    desired_profile: str | None = None
    skills: list[str]
    volunteers_needed: int
    applied: int = Field(description="Applications holding a seat (pending or approved)")
    approved: int
    seats_left: int
    benefits: str | None = None
    kind: Kind
    status: Literal["published", "archived"]
    organiser: OrganiserContacts


class OpportunityPage(BaseModel):
    """A page of the public list."""

    items: list[OpportunityOut]
    total: int = Field(
        description="Postings that match: exact, or a lower bound when `total_capped`"
    )
    total_capped: bool = Field(
        False,
        description="true: counting stopped at `facade.list_count_cap` (or at the end of "
        "this page, if further) and at least `total` postings match; show it as 'total+'",
    )
    page: int
    per_page: int


class OpportunityList(BaseModel):
    """An organisation's own postings, archived ones included."""

    items: list[OpportunityOut]


class ImportResult(BaseModel):
    """What a bulk import did (all or nothing)."""

    created: int
    updated: int


class VolunteerIn(_In):
    """Registration: ``anonymous`` (an alias only) or ``identified`` (VOL-01, VOL-02)."""

    mode: Literal["anonymous", "identified"]
    alias: Alias = Field(description="How organisers see you; the only name if anonymous")
    first_name: Line100 | None = None
    last_name: Line100 | None = None
    email: Email | None = None
    phone: Phone | None = None
    personal_code: str | None = Field(
        None, description="Optional; DDMMYY-NNNNN with a valid check digit, or 32NNNN-NNNNN"
    )
    municipality: Line100 | None = None

    @field_validator("personal_code")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        if value is None:
            return None
        reason = problem(value)
        if reason is not None:
            raise ValueError(f"not a valid personal code: {reason}")
        return value

    @model_validator(mode="after")
    def _mode(self) -> VolunteerIn:
        personal = ("first_name", "last_name", "email", "phone", "personal_code")
        if self.mode == "anonymous":
            given = [name for name in personal if getattr(self, name) is not None]
            if given:
                raise ValueError(f"an anonymous registration takes no {given[0]}")
        else:
            if not (self.first_name and self.last_name):
                raise ValueError("an identified registration needs first_name and last_name")
            if not (self.email or self.phone):
                raise ValueError("an identified registration needs an email or a phone")
        return self


class VolunteerOut(BaseModel):
    """The caller's own volunteer record."""

    id: int
    mode: Literal["anonymous", "identified"]
    alias: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    personal_code: str | None = None
    municipality: str | None = None
    created_at: datetime


class ErasureOut(BaseModel):
    """What erasure kept, anonymised, for statistics."""

    erased: bool
    kept_hours: int
    kept_certificates: int


class ApplicationIn(_In):
    """Applying for an opportunity."""

    motivation: Text2000 | None = None


class DecisionIn(_In):
    """Declining (or approving) an application, with an optional reason."""

    reason: Text2000 | None = None


class VolunteerContact(BaseModel):
    """What an organiser sees of an applicant: contacts only if identified."""

    alias: str
    mode: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


class ApplicationOut(BaseModel):
    """An application and where it stands."""

    id: int
    opportunity_id: int
    opportunity_title: str
    organisation_id: str
    volunteer_id: int
    status: Literal["pending", "approved", "declined", "withdrawn"]
    motivation: str | None = None
    decision_reason: str | None = None
    created_at: datetime
    decided_at: datetime | None = None
    volunteer: VolunteerContact | None = None


class ApplicationList(BaseModel):
    """Applications."""

    items: list[ApplicationOut]


class MessageIn(_In):
    """A message through the platform (the organiser never needs the volunteer's contacts)."""

    body: Text5000


class MessageOut(BaseModel):
    """A message of an application's thread."""

    id: int
    sender: Literal["volunteer", "organisation"]
    body: str
    created_at: datetime


class MessageList(BaseModel):
    """An application's thread, oldest first."""

    items: list[MessageOut]


class HoursIn(_In):
    """One side's record of a day."""

    hours: float = Field(gt=0, le=24, description="Hours worked that day (to the minute)")
    note: Text2000 | None = None


class HoursApproveIn(_In):
    """Approval of a day; ``hours`` is required when the two records differ."""

    hours: float | None = Field(None, gt=0, le=24)


class HoursDay(BaseModel):
    """One day: both records, the state of their reconciliation, the approved time."""

    date: date
    volunteer_hours: float | None = None
    organiser_hours: float | None = None
    approved_hours: float | None = None
    state: Literal["volunteer_only", "organiser_only", "matched", "disputed", "approved"]
    difference: float | None = Field(None, description="Volunteer minus organiser, if both")
    volunteer_note: str | None = None
    organiser_note: str | None = None
    approved_at: datetime | None = None


class HoursList(BaseModel):
    """Every recorded day of an application."""

    items: list[HoursDay]
    approved_hours: float


class CertificateIn(_In):
    """A certificate's content: the application it certifies and the competences gained."""

    application_id: int = Field(ge=1, le=2**53)
    competences: list[Line200] = Field(min_length=1, max_length=20)
    description: Text2000 | None = None


class CertificateEdit(_In):
    """New content of an open certificate."""

    competences: list[Line200] = Field(min_length=1, max_length=20)
    description: Text2000 | None = None


class ReturnIn(_In):
    """Why a volunteer's certificate goes back to them."""

    reason: Text2000


class AttachmentIn(_In):
    """An attachment, base64-encoded (size and type limits: facade.attachment_*)."""

    filename: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._()-]{0,99}$")]
    media_type: Annotated[str, StringConstraints(max_length=100)]
    content_base64: Annotated[str, StringConstraints(min_length=1, max_length=1_500_000)]


class AttachmentOut(BaseModel):
    """An attachment's metadata."""

    id: int
    filename: str
    media_type: str
    size: int
    sha256: str


class CertificateOut(BaseModel):
    """A certificate and where it stands."""

    id: int
    number: str | None = None
    application_id: int
    organisation_id: str
    volunteer_id: int
    origin: Literal["organisation", "volunteer"]
    status: Literal["draft", "submitted", "returned", "issued"]
    competences: list[str]
    description: str | None = None
    return_reason: str | None = None
    hours: float | None = None
    period_from: date | None = None
    period_to: date | None = None
    pdf_sha256: str | None = None
    verification_url: str | None = None
    issued_at: datetime | None = None
    attachments: list[AttachmentOut] = []


class CertificateList(BaseModel):
    """Certificates."""

    items: list[CertificateOut]


class Verification(BaseModel):
    """Whether a certificate is authentic and unchanged (no personal data)."""

    number: str
    authentic: bool = Field(description="Issued by this facade and its stored seal validates")
    unchanged: bool | None = Field(
        None, description="The given sha256 (or PDF) is the issued one; null if none was given"
    )
    status: Literal["issued", "holder_erased"]
    organisation: str
    hours: float
    period_from: date | None = None
    period_to: date | None = None
    issued_at: datetime
    pdf_sha256: str
    seal: str = Field(description="pyHanko's summary of the seal's validation")


class VerifyIn(_In):
    """A certificate PDF to check, base64-encoded."""

    pdf_base64: Annotated[str, StringConstraints(min_length=1, max_length=8_000_000)]


class Template(BaseModel):
    """The published certificate template (VOL-22)."""

    title: str
    fields: list[dict[str, str]]
    sealed_with: str
    verification: str
    sample_pdf: str


class StatisticsCell(BaseModel):
    """One cell of a cut; volunteers and hours are withheld (null) when suppressed."""

    key: str
    volunteers: int | None = None
    organisations: int
    opportunities: int
    approved_hours: float | None = None
    suppressed: bool = False


class Statistics(BaseModel):
    """A statistical cut (VOL-31)."""

    cut: Literal["policy", "organisation", "volunteer"]
    by: str
    min_cell: int | None = Field(None, description="Suppression threshold, if applied")
    cells: list[StatisticsCell]
    total: StatisticsCell
    registered_volunteers: int | None = None
