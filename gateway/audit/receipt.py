"""Receipts: the consumer's (and the provider's) signed evidence of one audit record.

A receipt names the log (``origin``), the record's position (``index``) and leaf hash, a
signed checkpoint whose tree contains it, and the RFC 6962 inclusion proof that links the
two. Holding one, anybody with the log's public key can later prove that the record was
in the log at that size - so the operator cannot cut the log's tail, or roll its database
back, below ``checkpoint.size`` without the receipt exposing it.

Since version 2 a receipt is self-contained: ``record`` is the record's canonical text,
the leaf hash's input (``leaf_hash = SHA-256(0x00 || record)``), so the record's
``response_sha256`` - and with it the exact body delivered - is checked offline from the
receipt alone, without a bundle or the operator. ``record`` is null when the record holds
something its reader must not see (a diagnostic ``internal_reason``, never shown to
consumers); such a body is checked against a bundle. Version 1 receipts (no ``record``)
are still read.

Wire form (canonical JSON, hashes in standard base64)::

    {"audit_id":"0193...","checkpoint":"<signed note>","inclusion_proof":["...",...],
     "index":41,"leaf_hash":"...","origin":"audit.gw.example/2026-11-23T...",
     "record":"{\"audit_id\":...}","v":2}

How a response carries it: the gateway serialises the result object first, digests those
exact bytes into the audit record (``response_sha256``), commits the record, and only then
inserts ``,"receipt":{...}`` before the result's closing brace. :func:`split_receipt`
undoes this byte-exactly, so ``SHA-256(result bytes)`` can be checked against the record
from the body a consumer kept.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from gateway.audit.record import canonical_json

__all__ = [
    "RECEIPT_VERSION",
    "Receipt",
    "attach_receipt",
    "receipt_in_document",
    "split_receipt",
]

RECEIPT_VERSION: Final = 2
#: Versions :meth:`Receipt.from_json` reads (version 1 has no ``record``).
_READABLE: Final = frozenset({1, 2})
#: Largest record text a receipt may carry (hostile input must stay bounded).
_MAX_RECORD: Final = 1 << 20

#: What precedes the receipt in a response body. Inside the receipt's own JSON text a
#: double quote is always escaped, so this sequence can only occur at the real boundary
#: (the last occurrence is the one searched for).
_MARKER: Final = b',"receipt":{'


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"receipt {what} must be a base64 string")
    try:
        value = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"receipt {what} is not valid base64") from exc
    if len(value) != 32:
        raise ValueError(f"receipt {what} must be 32 bytes, got {len(value)}")
    return value


@dataclass(frozen=True, slots=True)
class Receipt:
    origin: str
    index: int
    audit_id: str
    leaf_hash: bytes
    checkpoint: str
    inclusion_proof: tuple[bytes, ...]
    #: The record's canonical bytes (the leaf hash's input), or None when withheld.
    record: bytes | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "v": RECEIPT_VERSION,
            "origin": self.origin,
            "index": self.index,
            "audit_id": self.audit_id,
            "leaf_hash": _b64(self.leaf_hash),
            "checkpoint": self.checkpoint,
            "inclusion_proof": [_b64(h) for h in self.inclusion_proof],
            "record": None if self.record is None else self.record.decode("utf-8"),
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, obj: object) -> Receipt:
        """Parse a receipt object; ValueError naming the first bad member."""
        if not isinstance(obj, Mapping):
            raise ValueError("a receipt must be a JSON object")
        version = obj.get("v")
        if isinstance(version, bool) or version not in _READABLE:
            raise ValueError(f"unsupported receipt version {version!r}")
        origin, index, audit_id, checkpoint, proof = (
            obj.get("origin"),
            obj.get("index"),
            obj.get("audit_id"),
            obj.get("checkpoint"),
            obj.get("inclusion_proof"),
        )
        if not isinstance(origin, str) or not origin:
            raise ValueError("receipt origin must be a non-empty string")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError("receipt index must be a non-negative integer")
        if not isinstance(audit_id, str):
            raise ValueError("receipt audit_id must be a string")
        if not isinstance(checkpoint, str):
            raise ValueError("receipt checkpoint must be a signed note (string)")
        if not isinstance(proof, list) or len(proof) > 64:
            raise ValueError("receipt inclusion_proof must be a list of at most 64 hashes")
        record = obj.get("record")
        if record is not None and (not isinstance(record, str) or len(record) > _MAX_RECORD):
            raise ValueError("receipt record must be the record's text (at most 1 MiB) or null")
        return cls(
            origin=origin,
            index=index,
            audit_id=audit_id,
            leaf_hash=_unb64(obj.get("leaf_hash"), "leaf_hash"),
            checkpoint=checkpoint,
            inclusion_proof=tuple(_unb64(h, "inclusion_proof hash") for h in proof),
            record=None if record is None else record.encode("utf-8"),
        )


def attach_receipt(result: bytes, receipt: Receipt) -> bytes:
    """The response body: ``result`` (a JSON object's exact bytes) with a last member
    ``"receipt"`` inserted before its closing brace."""
    if not result.endswith(b"}") or result == b"{}":
        raise ValueError("attach_receipt needs a non-empty JSON object")
    return result[:-1] + _MARKER[:-1] + receipt.to_bytes() + b"}"


def split_receipt(body: bytes) -> tuple[bytes, Receipt]:
    """Undo :func:`attach_receipt`: the exact result bytes (whose SHA-256 the audit
    record holds) and the receipt. ValueError if ``body`` carries no receipt."""
    at = body.rfind(_MARKER)
    if at < 0 or not body.endswith(b"}}"):
        raise ValueError('the body has no "receipt" member at its end')
    try:
        obj = json.loads(body[at + len(_MARKER) - 1 : -1])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the body's receipt is not JSON: {exc}") from exc
    return body[:at] + b"}", Receipt.from_json(obj)


def receipt_in_document(data: bytes) -> Receipt:
    """The receipt in a file a user kept: a bare receipt, a served body (receipt attached
    by :func:`attach_receipt`) or a refusal's problem+json, whose ``"receipt"`` member
    is written with ordinary JSON spacing. ValueError when there is none."""
    try:
        return split_receipt(data)[1]
    except ValueError:
        pass  # not a served body: a bare receipt or a document with a receipt member
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if isinstance(obj, Mapping) and "receipt" in obj and "inclusion_proof" not in obj:
        return Receipt.from_json(obj["receipt"])
    return Receipt.from_json(obj)
