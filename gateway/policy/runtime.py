"""Which policy version a request is decided under.

:class:`PolicyRuntime` holds the active version, loaded (catalog, registry, engine) with its
planner. It watches the administration store's ``policy`` counter — at most every
``poll_s`` seconds, once per request at the most — and, when it changed, loads the newly
active version: a version activated in any process serves in every process within
``poll_s`` (0.25 s by default). A request takes :meth:`current` once and is decided wholly
under that version; a version is loaded once and kept while it is active (older ones stay
in a small cache for explanations and replays).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.auth.systems import SystemRegistry
from gateway.cache import LruCache
from gateway.catalog import Catalog
from gateway.errors import PolicyEngineError
from gateway.policy.bundle import PolicyBundle
from gateway.policy.engine import CasbinPolicyEngine

if TYPE_CHECKING:
    from gateway.query.plan import Planner

__all__ = ["ActivePolicy", "PolicyRuntime"]


@dataclass(frozen=True, slots=True)
class ActivePolicy:
    """One loaded version with its planner (plans are cached per version)."""

    bundle: PolicyBundle
    planner: Planner

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def catalog(self) -> Catalog:
        return self.bundle.catalog

    @property
    def registry(self) -> SystemRegistry:
        return self.bundle.registry

    @property
    def engine(self) -> CasbinPolicyEngine:
        return self.bundle.engine


class PolicyRuntime:
    def __init__(
        self,
        *,
        active_version: Callable[[], str | None],
        load: Callable[[str], ActivePolicy],
        epoch: Callable[[], int],
        clock: Callable[[], float],
        poll_s: float = 0.5,
        keep: int = 4,
    ) -> None:
        self._active_version = active_version
        self._load = load
        self._epoch = epoch
        self._clock = clock
        self._poll_s = poll_s
        self._loaded: LruCache[str, ActivePolicy] = LruCache(keep)
        self._lock = threading.Lock()
        self._seen_epoch = -1
        self._checked_at = float("-inf")
        self._current: ActivePolicy | None = None

    def current(self) -> ActivePolicy:
        """The active version. Raises PolicyEngineError (fail closed) when there is none
        or it cannot be loaded — but keeps serving the last good version if only the
        store is briefly unreachable."""
        with self._lock:
            now = self._clock()
            if self._current is None or now - self._checked_at >= self._poll_s:
                self._checked_at = now
                self._follow()
            if self._current is None:
                raise PolicyEngineError(
                    "No policy version is active; no data was served.",
                    internal_detail="the administration store has no active policy version",
                )
            return self._current

    def version_or_unknown(self) -> str:
        """The active version's id for a record, or ``unknown`` when none can be loaded
        (a refusal is still recorded then)."""
        try:
            return self.current().version
        except Exception:
            return "unknown"

    def version(self, version_id: str) -> ActivePolicy:
        """Any version, loaded (for explaining and replaying under a proposal)."""
        return self._loaded.get_or_compute(version_id, lambda: self._load(version_id))

    def refresh(self) -> None:
        """Look at the store at the next :meth:`current` (after a change made here)."""
        with self._lock:
            self._checked_at = float("-inf")

    def _follow(self) -> None:
        try:
            epoch = self._epoch()
            if epoch == self._seen_epoch and self._current is not None:
                return
            active = self._active_version()
        except Exception:
            if self._current is not None:
                return  # the store blinked: keep deciding under the version we have
            raise
        if active is None:
            self._current = None
        elif self._current is None or self._current.version != active:
            self._current = self.version(active)
        self._seen_epoch = epoch
