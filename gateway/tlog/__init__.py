"""Transparency-log specifications, spec-pure (the tessera style): RFC 6962 Merkle trees
and proofs (:mod:`~gateway.tlog.rfc6962`), C2SP signed notes (:mod:`~gateway.tlog.note`),
checkpoints (:mod:`~gateway.tlog.checkpoint`) and cosignatures
(:mod:`~gateway.tlog.cosignature`).

Nothing here imports from the gateway (a test walks the sources to keep it so): these
modules could be published on their own, and every function cites the section of the
spec it implements. Their errors (:mod:`~gateway.tlog.errors`) are ValueErrors of their
own; the gateway translates them where they cross into it.
"""
