"""The types of response bodies that handlers write as bytes or dicts, for the OpenAPI
document only (gateway/api/openapi.py): the query result and the token response are
serialised elsewhere (gateway/query/respond.py, gateway/auth/tokens.py) because their
exact bytes are hashed or signed; these dataclasses describe those bytes, member for
member (tests/e2e/test_openapi.py checks real responses against them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from litestar.openapi.spec import Example

__all__ = [
    "QUERY_EXAMPLE",
    "RESULT_EXAMPLE",
    "QueryResult",
    "ReceiptDoc",
    "ResultColumnDoc",
    "TokenForm",
    "TokenResponseDoc",
]


@dataclass
class ResultColumnDoc:
    name: str
    """The column's name in the result (its alias, or a name derived from it)."""
    type: str
    """Its type as the gateway describes it (text, integer, numeric, date, ...)."""
    masking: list[str] = field(default_factory=list)
    """The masks that shaped its values (empty when unmasked)."""


@dataclass
class ReceiptDoc:
    """The signed receipt of the response's audit record (verify it offline with
    ``gateway audit verify``)."""

    v: int
    origin: str
    index: int
    audit_id: str
    leaf_hash: str
    checkpoint: str
    inclusion_proof: list[str]
    record: str | None = None
    """The record's canonical JSON text, the leaf hash's input (v2): the body is checked
    offline from the receipt alone. Null when the record holds a diagnostic the requester
    may not read; such a body is checked against an evidence bundle."""


@dataclass
class QueryResult:
    """A served query. ``rows`` hold JSON values in the order of ``columns``."""

    audit_id: str
    purpose: str
    policy_version: str
    columns: list[ResultColumnDoc]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    """True when more rows matched than ``row_limit``; ``row_limit_by`` says who set it."""
    row_limit: int
    """The most rows this response could hold."""
    row_limit_by: Literal["policy", "gateway", "max_rows", "query"]
    """policy: capped by the provider's policy; gateway: by the deployment's ceiling;
    max_rows: truncated at the request's own max_rows; query: the query's LIMIT."""
    row_salt: str
    """Base64 salt of the row commitments (prove single rows later)."""
    receipt: ReceiptDoc


@dataclass
class TokenForm:
    """RFC 7523 §2.2 client authentication with a JWT assertion, form-encoded."""

    grant_type: str | None = None
    """``client_credentials``."""
    client_assertion_type: str | None = None
    """``urn:ietf:params:oauth:client-assertion-type:jwt-bearer``."""
    client_assertion: str | None = None
    """A JWT signed with the system's registered key (iss = sub = the system id, aud =
    the gateway's token endpoint, a fresh jti, a short exp)."""

    def as_form(self) -> dict[str, str]:
        """The fields that were sent."""
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class TokenResponseDoc:
    """RFC 6749 §5.1 access token response."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    """Seconds until the token expires."""


QUERY_EXAMPLE = Example(
    summary="Employment-subsidy review of one district",
    value={
        "sql": "SELECT name, district FROM population.people WHERE district = '历下区' LIMIT 5",
        "purpose": "employment_subsidy_review",
        "max_rows": 5,
    },
)

RESULT_EXAMPLE = Example(
    summary="Two rows, names masked, capped by the provider's policy",
    value={
        "audit_id": "01a209de-5b1c-7c44-9a51-2f0d6c1e9b30",
        "purpose": "employment_subsidy_review",
        "policy_version": "sha256:dd5601d4a41750a16c6f56947304e702356420468b4d5e02b10d650e2e873d58",
        "columns": [
            {"name": "name", "type": "text", "masking": ["name"]},
            {"name": "district", "type": "text", "masking": []},
        ],
        "rows": [["张**", "历下区"], ["王**", "历下区"]],
        "row_count": 2,
        "truncated": True,
        "row_limit": 2,
        "row_limit_by": "policy",
        "row_salt": "DpzKmh4XmdV4NWeAAGt9AY9928WnJUFfPCyreN930uI=",
        "receipt": {
            "v": 2,
            "origin": "audit.gateway.demo/2026-11-23",
            "index": 41,
            "audit_id": "01a209de-5b1c-7c44-9a51-2f0d6c1e9b30",
            "leaf_hash": "oWyK4VYXh0oe1nT8mZqnZY/tiSgd4Xb7hmvpFjPwwbs=",
            "checkpoint": "audit.gateway.demo/2026-11-23\n42\n…\n\n— … signature\n",
            "inclusion_proof": ["hPF6H04duSz/8S2dMnG5YxcNyNaGPWUUB1VMFgKqbfA="],
            "record": '{"audit_id":"01a209de-5b1c-7c44-9a51-2f0d6c1e9b30",…,"v":3}',
        },
    },
)
