"""The xmlsec1 command line (libxmlsec1) as an independent verifier and signer for tests.

xmlsec1 is a Debian package (``apt-get install xmlsec1``), not a Python one; .ci/run installs
it. Locally a test without it is skipped; in CI (``CI`` set) its absence fails the test, so the
interop evidence can never silently vanish.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

#: The profile's ID attribute, as xmlsec1 has to be told (--id-attr:Id <ns>:<element>).
ID_ATTRIBUTE = "Id"


def xmlsec1() -> str:
    """The xmlsec1 executable; skip (locally) or fail (in CI) without it."""
    found = shutil.which("xmlsec1")
    if found is None:
        message = "xmlsec1 (libxmlsec1's command line) is not installed: apt-get install xmlsec1"
        if os.environ.get("CI"):
            pytest.fail(message + " (.ci/run installs it; CI must run the interop tests)")
        pytest.skip(message)
    return found


def _id_attr(element: str) -> list[str]:
    # "{ns}Local" -> "ns:Local": xmlsec1 splits the node name at the last colon.
    namespace, _, local = element[1:].partition("}")
    return [f"--id-attr:{ID_ATTRIBUTE}", f"{namespace}:{local}" if namespace else local]


def verify(document: Path, certificate: Path, *id_elements: str) -> subprocess.CompletedProcess:
    """``xmlsec1 --verify`` of ``document`` with the key of the pinned ``certificate``.

    ``--pubkey-cert-pem`` is pinning: the key comes from our copy of the partner's
    certificate, not from the document's KeyInfo. ``id_elements`` ("{ns}Local") are the
    elements whose ``Id`` attribute is an ID (xmlsec1 knows no schema).
    """
    args = [xmlsec1(), "--verify", "--pubkey-cert-pem", str(certificate)]
    for element in id_elements:
        args += _id_attr(element)
    return subprocess.run(
        [*args, str(document)], capture_output=True, text=True, timeout=60, check=False
    )


def sign(template: Path, key: Path, certificate: Path, *id_elements: str) -> bytes:
    """``xmlsec1 --sign`` of a template document (an empty ds:Signature to fill in)."""
    output = template.with_suffix(".signed.xml")
    args = [xmlsec1(), "--sign", "--privkey-pem", f"{key},{certificate}"]
    for element in id_elements:
        args += _id_attr(element)
    done = subprocess.run(
        [*args, "--output", str(output), str(template)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"xmlsec1 --sign failed: {done.stderr}"
    return output.read_bytes()


def signature_template(reference_uri: str, *, transforms: tuple[str, ...] | None = None) -> str:
    """An empty enveloped ds:Signature (exc-c14n, RSA-SHA256, SHA-256) for xmlsec1 to fill."""
    algorithms = transforms or (
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
    )
    transform_xml = "".join(f'<ds:Transform Algorithm="{a}"/>' for a in algorithms)
    return (
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
        '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
        f'<ds:Reference URI="{reference_uri}"><ds:Transforms>{transform_xml}</ds:Transforms>'
        '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
        "<ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/>"
        "<ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo>"
        "</ds:Signature>"
    )
