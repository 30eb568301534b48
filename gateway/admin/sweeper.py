"""The periodic work of the sharing workflow, in every gateway process: escalate
applications whose reply date passed, end grants whose period is over (and start those
whose period began), remind holders before a grant ends. Each step is idempotent and
records its changes in the audit log, so several replicas may run it at once."""

from __future__ import annotations

import logging
import threading
from typing import Any

from gateway.admin.applications import ApplicationStore, StoredGrants
from gateway.audit.receipt import Receipt
from gateway.audit.trail import AuditTrail
from gateway.clock import Clock

__all__ = ["Sweeper"]

_log = logging.getLogger("gateway.admin.sweeper")


class Sweeper:
    def __init__(
        self,
        applications: ApplicationStore,
        grants: StoredGrants,
        trail: AuditTrail,
        *,
        clock: Clock,
        interval_s: float,
    ) -> None:
        self._applications = applications
        self._grants = grants
        self._trail = trail
        self._clock = clock
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> dict[str, list[str]]:
        """One round; returns what changed (for the CLI and tests)."""
        request_id = self._trail.begin(request_id=None, client_ip=None).request_id

        def record(event: dict[str, Any]) -> Receipt:
            # One record per change, each with its own audit id (one sweep may escalate
            # and expire many applications), all under the sweep's request id.
            context = self._trail.begin(request_id=request_id, client_ip=None, request_line="sweep")
            return self._trail.acted(context, None, event)

        now = self._clock()
        changed = {"escalated": self._applications.escalate_overdue(now=now, record=record)}
        changed |= self._applications.expire_and_remind(now=now, record=record)
        if changed["expired"]:
            self._grants.refresh()
        return changed

    def start(self) -> None:
        if self._interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="gateway-sweeper", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sweep()
            except Exception:  # the next round retries; a bug must not stop the workflow
                _log.exception("sweep failed")
