"""POST /v1/witness/add-checkpoint: this gateway as another log's witness (C2SP
tlog-witness). Served only when the key directory holds a witness key; every request is
audited like any other (cosigned, or refused with the witness's reason)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Request, Response, post

from gateway.api.deps import Injected, audit_headers
from gateway.audit.trail import AccessKind, AuditTrail
from gateway.audit.witness import Witness
from gateway.errors import error_for_status
from gateway.query.state import RequestContext

__all__ = ["witness_add_checkpoint"]


@post(
    "/v1/witness/add-checkpoint",
    status_code=200,
    summary="Witness: cosign another log's checkpoint (C2SP tlog-witness add-checkpoint)",
    description=(
        "Body: 'old <size>', the consistency proof (base64, one hash per line), a blank "
        "line, the signed checkpoint. 200: cosignature line(s); 409 (text/x.tlog.size): "
        "the witness's size, retry with a proof from it; 404: a log this witness does not "
        "follow; 403: bad log signature; 422: inconsistent (fork or rollback). Served only "
        "when the key directory holds witness.key. 见证方联署检查点。"
    ),
    tags=["audit"],
    # The body is read raw (no data field): the framework's 413 still applies; the
    # witness's own refusals are text, as the C2SP protocol says.
    opt={
        "problems": (413,),
        "text_errors": {
            400: "text/plain",
            403: "text/plain",
            404: "text/plain",
            409: "text/x.tlog.size",
            422: "text/plain",
        },
    },
)
async def witness_add_checkpoint(
    request: Request[Any, Any, Any],
    witness: Injected[Witness | None],
    trail: Injected[AuditTrail],
    context: Injected[RequestContext],
) -> Response[str]:
    try:
        # Read first: an oversized body is refused (413) whether or not this is a witness.
        body: str | None = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        body = None
    if witness is None:
        status, text = 404, "this gateway is not configured as a witness\n"
        media_type = "text/plain"
    elif body is None:
        status, text, media_type = 400, "the body is not UTF-8\n", "text/plain"
    else:
        # Signature check, proof and a durable SQLite write: off the event loop.
        answer = await anyio.to_thread.run_sync(witness.add_checkpoint, body)
        status, text, media_type = answer.status, answer.text, answer.media_type
    # The witness protocol answers in text (C2SP tlog-witness), but the request is
    # audited like any other: cosigned, or refused with the witness's reason.
    if status == 200:
        await anyio.to_thread.run_sync(
            lambda: trail.accessed(context, None, kind=AccessKind.WITNESS_COSIGN)
        )
    else:
        refusal = error_for_status(status)(text.strip())
        await anyio.to_thread.run_sync(lambda: trail.refused(refusal, context))
    return Response(
        text,
        status_code=status,
        media_type=f"{media_type}; charset=utf-8",
        headers=audit_headers(context, no_store=False),
    )
