"""The audit log's signing key: checkpoints (C2SP tlog-checkpoint in a signed note).

The log is named by its *origin*, which is also the name of its Ed25519 note key (the
C2SP convention), e.g. ``audit.gateway.example.gov.cn/2026-11-23``. Key files in the key
directory (``Settings.key_dir``, see keys/README.md)::

    audit-log.key          PRIVATE+KEY+<origin>+<hash>+<base64>   (mode 0600, never shared)
    audit-log.vkey         <origin>+<hash>+<base64>                (publish; verifiers pin it)

Demo directories use ``audit-log.demo.key`` / ``audit-log.demo.vkey`` instead, so that a
demo key is recognisable by its name. Rotating the key starts a new origin (see
:mod:`gateway.audit.rotation`), because a verifier pins (origin, key) pairs: one origin
never has two keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from gateway.errors import ConfigurationError
from gateway.tlog.checkpoint import Checkpoint, sign_checkpoint
from gateway.tlog.note import Signer, Verifier, generate_key

__all__ = [
    "LOG_KEY_FILE",
    "LOG_KEY_FILE_DEMO",
    "CheckpointSigner",
    "load_log_signer",
    "new_log_signer",
    "write_log_key",
]

LOG_KEY_FILE: Final = "audit-log.key"
LOG_KEY_FILE_DEMO: Final = "audit-log.demo.key"

# A key name may not contain '+' or whitespace (signed-note); keep origins to a plain,
# URL-like schema-less name as C2SP tlog-checkpoint recommends.
_ORIGIN_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/:]{2,200}")


class CheckpointSigner:
    """Signs checkpoints of one log origin with one Ed25519 note key."""

    def __init__(self, signer: Signer) -> None:
        if _ORIGIN_RE.fullmatch(signer.name) is None:
            raise ConfigurationError(
                f"audit log key name {signer.name!r} is not a usable origin: use letters, "
                "digits and . _ - / : (e.g. audit.gateway.example.gov.cn/2026-11-23)"
            )
        self._signer = signer
        self.verifier: Verifier = signer.verifier()

    @property
    def origin(self) -> str:
        return self._signer.name

    @property
    def note_signer(self) -> Signer:
        return self._signer

    def sign(self, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
        """The signed note of the checkpoint (origin, size, root)."""
        return sign_checkpoint(Checkpoint(self.origin, size, root, tuple(extensions)), self._signer)


def new_log_signer(origin: str) -> CheckpointSigner:
    """A fresh random log key named ``origin``; ConfigurationError for an unusable name."""
    if _ORIGIN_RE.fullmatch(origin) is None:
        raise ConfigurationError(f"{origin!r} is not a usable audit log origin")
    return CheckpointSigner(Signer.parse(generate_key(origin)[0]))


def write_log_key(
    directory: Path, signer: CheckpointSigner, *, demo: bool = False
) -> tuple[Path, Path]:
    """Write ``signer``'s private key (0600, never overwriting) and its verifier key."""
    private = directory / (LOG_KEY_FILE_DEMO if demo else LOG_KEY_FILE)
    public = private.with_suffix(".vkey")
    # Imported here: gateway.auth loads the token stack, which the offline verifier (a
    # reader of this module's key files) must not pay for at start-up.
    from gateway.auth.keys import write_private

    write_private(private, (signer.note_signer.encode() + "\n").encode("utf-8"))
    public.write_text(signer.verifier.encode() + "\n", encoding="utf-8")
    return private, public


def load_log_signer(key_dir: Path) -> CheckpointSigner:
    """The current log key of ``key_dir`` (the real file wins over the demo one).

    Raises ConfigurationError when neither exists or the file is not a note key: the
    gateway refuses to start rather than publish unsigned (unverifiable) checkpoints.
    """
    for name in (LOG_KEY_FILE, LOG_KEY_FILE_DEMO):
        path = key_dir / name
        if path.exists():
            try:
                return CheckpointSigner(Signer.parse(path.read_text(encoding="utf-8").strip()))
            except ValueError as exc:
                raise ConfigurationError(f"{path}: not a signed-note private key: {exc}") from exc
    raise ConfigurationError(
        f"no audit log signing key in {key_dir} ({LOG_KEY_FILE}); "
        "create one with `gateway audit init-key --origin audit.<your host>/<date>`"
    )
