"""The audit secret and the keys derived from it.

One 32-byte secret per deployment (``audit-secret.bin`` in the key directory, or
``audit-secret.demo.bin`` in a demo directory), held by the gateway operator and handed to
auditors. Two keys are derived from it with HMAC-SHA256 (distinct labels, so one key never
serves two purposes):

* the *identifier key*: ID numbers, credit codes, bank cards and phone numbers in the
  consumer's SQL are stored in the audit log as keyed HMAC tokens
  (:mod:`gateway.audit.identifiers`); an auditor with this key and a candidate number can
  compute its token (``gateway audit lookup-id``) and search for it; anybody else who
  reads the log cannot brute-force the small identifier space;
* the *row key*: the salt of each response's row commitment
  (:func:`gateway.audit.rows.row_salt`), so that the root in the record plus a proof's
  sibling hashes do not let a reader confirm guessed rows.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway.audit.identifiers import IdentifierRedactor
from gateway.errors import ConfigurationError

__all__ = [
    "AUDIT_SECRET_FILE",
    "AUDIT_SECRET_FILE_DEMO",
    "EvidenceKeys",
    "load_audit_secret",
    "write_audit_secret",
]

AUDIT_SECRET_FILE: Final = "audit-secret.bin"  # noqa: S105 - a file name
AUDIT_SECRET_FILE_DEMO: Final = "audit-secret.demo.bin"  # noqa: S105 - a file name


def _derive(secret: bytes, label: str) -> bytes:
    return hmac.new(secret, b"gateway/audit-key/v1\x00" + label.encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class EvidenceKeys:
    """Keys derived from the audit secret (see the module docstring)."""

    identifier_key: bytes
    row_key: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> EvidenceKeys:
        if len(secret) < 32:
            raise ConfigurationError("the audit secret must be at least 32 bytes")
        return cls(_derive(secret, "identifiers"), _derive(secret, "rows"))

    def redactor(self) -> IdentifierRedactor:
        return IdentifierRedactor(self.identifier_key)

    def __repr__(self) -> str:  # never print key bytes into a log
        return "EvidenceKeys(<redacted>)"


def load_audit_secret(key_dir: Path) -> bytes:
    """The audit secret of ``key_dir`` (at least 32 bytes, raw or hex). Raises
    ConfigurationError when missing, ambiguous or too short."""
    # Imported here: gateway.auth loads the token stack (see gateway/audit/signing.py).
    from gateway.auth.keys import load_secret

    return load_secret(key_dir, AUDIT_SECRET_FILE, AUDIT_SECRET_FILE_DEMO, "audit secret")


def write_audit_secret(directory: Path, name: str = AUDIT_SECRET_FILE) -> Path:
    """A fresh random secret, mode 0600; refuses to overwrite."""
    from gateway.auth.keys import write_secret

    return write_secret(directory, name)
