"""The verifier's output: :class:`Check` results in a :class:`Report`, and the :class:`Checks`
accumulator the checks write to while a verification runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["Check", "Checks", "Report"]

_OK: Final = "\u2714"  # ✔
_FAIL: Final = "\u2718"  # ✘
_LANGS: Final = ("en", "zh")


@dataclass(frozen=True)
class Check:
    """One verification step: what was checked (``name``), whether it held, and a
    message for a human that names the index, size or origin concerned."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Report:
    """The outcome of a verification: every check, in the order they ran."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when at least one check ran and every check held (an empty report proves
        nothing, so it is not a success)."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    def failures(self) -> tuple[Check, ...]:
        """The checks that did not hold."""
        return tuple(check for check in self.checks if not check.ok)

    def __add__(self, other: Report) -> Report:
        return Report(self.checks + other.checks)

    def verdict(self, lang: str = "en") -> str:
        """The one-line verdict: ``VERIFIED: ...`` / ``FAILED: n problem(s)`` (``en``) or
        ``核验通过：...`` / ``核验失败：...`` (``zh``)."""
        if lang not in _LANGS:
            raise ValueError(f"unknown report language {lang!r} (use one of {_LANGS})")
        problems = len(self.failures())
        if lang == "zh":
            if self.ok:
                return f"核验通过：全部 {len(self.checks)} 项检查通过"
            if not self.checks:
                return "核验失败：没有核验任何内容"
            return f"核验失败：{problems} 个问题"
        if self.ok:
            return f"VERIFIED: all {len(self.checks)} checks passed"
        if not self.checks:
            return "FAILED: nothing was verified"
        return f"FAILED: {problems} problem(s)"

    def render(self, lang: str = "en") -> str:
        """Human text: one line per check (✔ or ✘, then its message), then the verdict
        line in ``lang`` (``en`` or ``zh``; the messages themselves are English)."""
        lines = [f"{_OK if check.ok else _FAIL} {check.detail}" for check in self.checks]
        lines.append(self.verdict(lang))
        return "\n".join(lines)


class Checks:
    """Accumulates checks while a verification runs."""

    def __init__(self) -> None:
        self.items: list[Check] = []

    def ok(self, name: str, detail: str) -> None:
        self.items.append(Check(name, True, detail))

    def fail(self, name: str, detail: str) -> None:
        self.items.append(Check(name, False, detail))

    def report(self) -> Report:
        return Report(tuple(self.items))
