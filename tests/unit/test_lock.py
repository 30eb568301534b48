"""requirements/production.txt (scripts/lock.sh) matches pyproject.toml: every direct
dependency (and the "fast" extra the image installs) is pinned there at a version its
specifier allows, nothing is pinned as direct that pyproject no longer asks for, and
every pin carries hashes (pip --require-hashes). A dependency changed in pyproject.toml
without re-running scripts/lock.sh fails here."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

LOCK = ROOT / "requirements" / "production.txt"
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)")


def _direct() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["fast"]
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def _lock() -> dict[str, tuple[Version, int, str]]:
    """name -> (pinned version, number of hashes, its "via" comment)."""
    entries: dict[str, tuple[Version, int, str]] = {}
    current: str | None = None
    for line in LOCK.read_text("utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            entries[current] = (Version(match.group(2)), 0, "")
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes, via = entries[current]
            entries[current] = (version, hashes + 1, via)
        elif current and line.strip().startswith("#"):
            version, hashes, via = entries[current]
            entries[current] = (version, hashes, via + line)
    return entries


def test_the_lock_pins_every_direct_dependency_within_its_specifier() -> None:
    lock = _lock()
    for name, requirement in _direct().items():
        assert name in lock, f"{name} is not in {LOCK.name}: run scripts/lock.sh"
        version = lock[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} does not satisfy {requirement}: run scripts/lock.sh"
        )


def test_the_lock_has_no_stale_direct_dependency() -> None:
    direct = set(_direct())
    from_pyproject = {n for n, (_, _, via) in _lock().items() if "gateway (pyproject.toml)" in via}
    assert from_pyproject == direct, (
        f"lock and pyproject.toml disagree on direct dependencies: "
        f"only in the lock {sorted(from_pyproject - direct)}, "
        f"only in pyproject {sorted(direct - from_pyproject)}; run scripts/lock.sh"
    )


def test_every_pin_is_hashed_and_the_lock_says_how_it_was_made() -> None:
    lock = _lock()
    assert len(lock) > len(_direct())  # the transitive dependencies are pinned too
    unhashed = [name for name, (_, hashes, _) in lock.items() if hashes == 0]
    assert not unhashed
    assert "scripts/lock.sh" in LOCK.read_text("utf-8").split("\n", 3)[1]
