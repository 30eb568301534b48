"""The errors of :mod:`gateway.tlog`: its own, because the package imports nothing from
the gateway. Both are ValueErrors (the input is wrong); the gateway translates them into
its own hierarchy where they cross into it (see gateway/errors.py)."""

from __future__ import annotations

__all__ = ["NoteError", "ProofError", "TlogError"]


class TlogError(ValueError):
    """A value given to the transparency-log code is malformed or does not verify."""


class ProofError(TlogError):
    """An inclusion or consistency proof, or a value that goes with it, does not verify.

    Raised for every verification failure, including malformed input (a hash of the wrong
    length, a negative or non-integer size), so that a verifier of proofs that arrive from
    outside needs to catch this one exception only.
    """


class NoteError(TlogError):
    """A key, note, checkpoint or cosignature is malformed, or its signatures do not
    verify. The message says what is wrong and never quotes private key material."""
