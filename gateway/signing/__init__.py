"""XML signatures (XMLDSig, enveloped, exclusive c14n) for payloads exchanged with partners.

Keys, certificates and CA stores are loaded once at start-up (:meth:`Signer.from_files`,
:meth:`TrustStore.from_files`); signing and verifying a message never touches the disk.
"""

from gateway.signing.keys import ALGORITHMS, fingerprint, init_keys
from gateway.signing.signer import Signer
from gateway.signing.trust import TrustStore

__all__ = ["ALGORITHMS", "Signer", "TrustStore", "fingerprint", "init_keys"]
