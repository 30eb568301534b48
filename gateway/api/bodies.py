"""What litestar does not check about a request body: its content type (415, naming the
one to send) and the members of a JSON object (400, naming the unknown ones).

Litestar decodes a ``JSONBody`` whatever the ``Content-Type`` says and drops members the
body's dataclass does not have, so a typo (``max_row``) or a form post would be served as
if the member were absent. :func:`check_request_body` runs before each handler
(``before_request``) on the body the handler declares, so every route with a body,
present and future, gets both checks; a malformed body is left to litestar, whose refusal
gateway/api/problems.py renders.
"""

from __future__ import annotations

import dataclasses
import json
import types
from typing import Any, Union, get_args, get_origin

from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.typing import FieldDefinition

from gateway.errors import InvalidRequestError, UnsupportedMediaTypeError
from gateway.i18n import msg

__all__ = ["check_request_body", "members_of"]


async def check_request_body(request: Request[Any, Any, Any]) -> None:
    """Raise UnsupportedMediaTypeError when a non-empty body is not of the media type
    the handler takes, InvalidRequestError when a JSON object has members the handler's
    body type does not. Returns None so that the handler runs."""
    field = request.route_handler.parsed_data_field
    if field is None:
        return
    body = await request.body()
    if not body:
        return  # an optional body left out; a required one is litestar's to refuse
    expected = _media_type(field)
    sent = request.content_type[0].lower()
    if not _accepts(expected, sent):
        raise UnsupportedMediaTypeError(
            msg(
                "This endpoint takes a body of type {expected}, not {sent}: send it with "
                "Content-Type: {expected}.",
                expected=expected,
                sent=sent or "-",
            ),
            extra={"accept": expected},
        )
    if expected != RequestEncodingType.JSON.value:
        return
    try:
        decoded = json.loads(body)
    except ValueError:
        return  # litestar refuses it as malformed
    known = members_of(field.annotation)
    if not isinstance(decoded, dict) or known is None:
        return
    unknown = sorted(set(decoded) - known)
    if unknown:
        raise InvalidRequestError(
            msg(
                "The request body has members this endpoint does not know: {unknown}. "
                "It accepts: {known}.",
                unknown=", ".join(unknown),
                known=", ".join(sorted(known)),
            ),
            extra={"unknown_members": unknown, "accepted_members": sorted(known)},
        )


def members_of(annotation: Any) -> frozenset[str] | None:
    """The member names of a body type (a dataclass, possibly ``| None``); None when the
    type accepts any member (a mapping)."""
    if get_origin(annotation) in (Union, types.UnionType):
        found = [members_of(a) for a in get_args(annotation) if a is not type(None)]
        return found[0] if len(found) == 1 else None
    if dataclasses.is_dataclass(annotation):
        return frozenset(f.name for f in dataclasses.fields(annotation))
    return None


def _media_type(field: FieldDefinition) -> str:
    declared = getattr(field.kwarg_definition, "media_type", None)
    return str(declared.value if declared is not None else RequestEncodingType.JSON.value)


def _accepts(expected: str, sent: str) -> bool:
    if expected == RequestEncodingType.JSON.value:
        # RFC 6839 §3.1: application/<subtype>+json is JSON too.
        return sent == expected or (sent.startswith("application/") and sent.endswith("+json"))
    return sent == expected
