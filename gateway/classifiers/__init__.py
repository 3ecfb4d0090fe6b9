"""Code lists from the E-case shared-classifier service (REQUIREMENTS.md T-10).

``plus-gateway classifiers sync`` fetches each local classifier's ``source`` list
(:mod:`~gateway.classifiers.client`), diffs it (:mod:`~gateway.classifiers.diff`), checks what
the new version would break in mappings, XSDs and samples (:mod:`~gateway.classifiers.breaks`)
and, when nothing breaks, rewrites the file and journals it (:mod:`~gateway.classifiers.apply`);
:mod:`~gateway.classifiers.sync` runs the steps. The service contract is ours:
docs/CLASSIFIERS.md.
"""

from gateway.classifiers.breaks import Break, XsdEnumerations, check_breaks
from gateway.classifiers.client import ClassifierClient
from gateway.classifiers.diff import ClassifierDiff, diff_classifier, propose_canonical
from gateway.classifiers.remote import ContractError, RemoteClassifier, RemoteCode, RemoteVersion
from gateway.classifiers.sync import SyncReport, apply, prepare

__all__ = [
    "Break",
    "ClassifierClient",
    "ClassifierDiff",
    "ContractError",
    "RemoteClassifier",
    "RemoteCode",
    "RemoteVersion",
    "SyncReport",
    "XsdEnumerations",
    "apply",
    "check_breaks",
    "diff_classifier",
    "prepare",
    "propose_canonical",
]
