"""The four registries behind VISS: where each lives in the WSDL, XSD and mappings."""

from __future__ import annotations

from dataclasses import dataclass

from gateway import ns

__all__ = ["REGISTRIES", "RegistryContract"]


@dataclass(frozen=True)
class RegistryContract:
    """One registry's contract: WSDL service and operation, request root, answer mapping."""

    name: str
    title: str
    service: str
    port: str
    operation: str
    namespace: str
    request_root: str
    message_type: str
    schema: str

    @property
    def request_tag(self) -> str:
        """Clark name of the request body element."""
        return ns.qname(self.namespace, self.request_root)


REGISTRIES: dict[str, RegistryContract] = {
    c.name: c
    for c in (
        RegistryContract(
            "viis",
            "Education (VIIS)",
            "ViisService",
            "ViisPort",
            "GetEducation",
            ns.VIIS,
            "EducationRequest",
            "viss.viis.education",
            "viss/viis.xsd",
        ),
        RegistryContract(
            "iis",
            "Disability (IIS)",
            "IisService",
            "IisPort",
            "GetDisability",
            ns.IIS,
            "DisabilityRequest",
            "viss.iis.disability",
            "viss/iis.xsd",
        ),
        RegistryContract(
            "vid",
            "Employment and legal income (VID)",
            "VidService",
            "VidPort",
            "GetEmploymentIncome",
            ns.VID,
            "EmploymentIncomeRequest",
            "viss.vid.employment_income",
            "viss/vid.xsd",
        ),
        RegistryContract(
            "rd",
            "Social status (RD)",
            "RdService",
            "RdPort",
            "GetSocialStatus",
            ns.RD,
            "SocialStatusRequest",
            "viss.rd.social_status",
            "viss/rd.xsd",
        ),
    )
}
