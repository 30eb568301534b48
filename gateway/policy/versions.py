"""Policy versions: the catalog, the system registry, the casbin model and the policy
lines as one immutable, content-addressed bundle.

A :class:`PolicySource` is the four files' texts. Its id, ``sha256:<hex>`` over the files'
names and bytes, is the *policy version* recorded with every decision in the audit log,
so an auditor can name exactly which rules were in force. Public keys that systems.toml
names by path are inlined at import (:meth:`PolicySource.from_directory`), so a version is
self-contained: exporting it writes a directory that loads anywhere, and a key file
changed on disk cannot change what an existing version means.

``backends.toml`` is not part of a version: backends are the deployment's connections
(with their credentials), opened once at start; a version's catalog must only name
backends the deployment has.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import ConfigurationError

__all__ = ["POLICY_FILES", "PolicyChange", "PolicySource", "Review", "structured_diff"]

#: The files a version consists of, in hashing order.
POLICY_FILES = ("catalog.toml", "systems.toml", "model.conf", "policy.csv")

# `public_key = "<path>"` lines of systems.toml whose value is a path, not a PEM.
_KEY_PATH_LINE = re.compile(r'^(?P<indent>\s*)public_key\s*=\s*"(?P<path>[^"\n]+)"\s*$', re.M)


@dataclass(frozen=True, slots=True)
class PolicySource:
    """The four files of one policy version (file name -> text)."""

    files: Mapping[str, str]

    def __post_init__(self) -> None:
        missing = [n for n in POLICY_FILES if n not in self.files]
        extra = sorted(set(self.files) - set(POLICY_FILES))
        if missing or extra:
            raise ConfigurationError(
                f"a policy version has exactly the files {', '.join(POLICY_FILES)}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unexpected {extra}" if extra else "")
            )

    @property
    def id(self) -> str:
        """``sha256:<hex>`` over each file's name, length and UTF-8 bytes."""
        digest = hashlib.sha256()
        for name in POLICY_FILES:
            data = self.files[name].encode("utf-8")
            digest.update(name.encode() + b"\x00" + len(data).to_bytes(8, "big") + data)
        return "sha256:" + digest.hexdigest()

    @classmethod
    def from_directory(cls, policy_dir: Path, *, key_base: Path | None = None) -> PolicySource:
        """Read the four files of ``policy_dir``; public keys named by path in
        systems.toml are inlined, each path relative to systems.toml itself (then, for
        directories laid out like the demo's, to ``key_base``, by default the directory
        above ``policy_dir``). Without a ``model.conf`` of its own, the directory uses the
        model the package ships. Raises ConfigurationError naming an unreadable file or key."""
        from gateway.policy.engine import MODEL_CONF

        files: dict[str, str] = {}
        for name in POLICY_FILES:
            path = policy_dir / name
            if name == "model.conf" and not path.exists():
                path = MODEL_CONF
            try:
                files[name] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(f"cannot read {path}: {exc}") from exc
        bases = [policy_dir.resolve(), key_base or policy_dir.resolve().parent]
        files["systems.toml"] = inline_keys(files["systems.toml"], bases)
        return cls(files)

    def write_to(self, directory: Path) -> None:
        """Write the four files into ``directory`` (created if missing)."""
        directory.mkdir(parents=True, exist_ok=True)
        for name in POLICY_FILES:
            (directory / name).write_text(self.files[name], encoding="utf-8")

    def with_files(self, changes: Mapping[str, str]) -> PolicySource:
        return PolicySource({**self.files, **changes})

    def unified_diff(self, newer: PolicySource) -> str:
        """A human-readable diff from this version to ``newer`` (per file, unified)."""
        out: list[str] = []
        for name in POLICY_FILES:
            out.extend(
                difflib.unified_diff(
                    self.files[name].splitlines(keepends=True),
                    newer.files[name].splitlines(keepends=True),
                    fromfile=f"a/{name}",
                    tofile=f"b/{name}",
                )
            )
        return "".join(out)


def inline_keys(text: str, bases: list[Path]) -> str:
    """systems.toml with every ``public_key = "<path>"`` replaced by the PEM it names
    (looked up under each of ``bases`` in turn). Raises ConfigurationError."""

    def inline(match: re.Match[str]) -> str:
        ref = match.group("path")
        if ref.lstrip().startswith("-----BEGIN"):
            return match.group(0)
        # Lexically normalised: ``../keys/x.pem`` works before the directory it climbs
        # out of exists (a systems.toml being written for the first time).
        candidates = (
            [Path(ref)]
            if Path(ref).is_absolute()
            else [Path(os.path.normpath(b / ref)) for b in bases]
        )
        for candidate in candidates:
            if candidate.is_file():
                pem = candidate.read_text(encoding="ascii").strip()
                return f'{match.group("indent")}public_key = """\n{pem}\n"""'
        raise ConfigurationError(
            f"systems.toml: public key file {ref!r} not found (looked in "
            + ", ".join(str(b) for b in bases)
            + ")"
        )

    return _KEY_PATH_LINE.sub(inline, text)


@dataclass(frozen=True, slots=True)
class Review:
    """What reviewing a proposal found: the departments whose datasets it touches (scope
    and the two-person rule) and whether it changes configuration beyond datasets."""

    departments: frozenset[str]
    configuration: bool


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One change between two versions, in the officer's terms."""

    #: ``rule`` (a policy.csv line), ``catalog`` (an entry of catalog.toml), ``system``
    #: (an entry of systems.toml), ``model`` (model.conf).
    kind: str
    #: ``added`` | ``removed`` | ``changed``.
    change: str
    #: What it is about: the policy line, or the dotted key path.
    subject: str
    before: Any = None
    after: Any = None
    #: The datasets it concerns (for scoping to an officer's department).
    datasets: frozenset[str] = field(default_factory=frozenset)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "change": self.change,
            "subject": self.subject,
            "before": self.before,
            "after": self.after,
            "datasets": sorted(self.datasets),
        }


def _policy_lines(text: str) -> dict[str, list[str]]:
    """Normalised policy lines (fields stripped) keyed by their canonical text."""
    lines: dict[str, list[str]] = {}
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in raw.split(",")]
        lines[", ".join(fields)] = fields
    return lines


def _line_dataset(fields: list[str]) -> frozenset[str]:
    ptype = fields[0]
    obj = ""
    if ptype == "p" and len(fields) > 4:
        obj = fields[4]
    elif ptype in ("p2", "p3") and len(fields) > 3:
        obj = fields[3]
    return frozenset({obj.split(".", 1)[0]}) if obj else frozenset()


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _flatten(value[key], f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        # Arrays of tables (catalog columns) are keyed by their name when they have one.
        for i, item in enumerate(value):
            key = str(item.get("name", i))
            yield from _flatten(item, f"{prefix}[{key}]")
    else:
        yield prefix, value


def _toml(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{name}: {exc}") from exc


def structured_diff(old: PolicySource, new: PolicySource) -> list[PolicyChange]:
    """What changed from ``old`` to ``new``: policy lines added/removed, catalog and
    registry entries added/removed/changed, the model changed. Raises ConfigurationError
    when a TOML file does not parse."""
    changes: list[PolicyChange] = []
    before, after = _policy_lines(old.files["policy.csv"]), _policy_lines(new.files["policy.csv"])
    for key in sorted(before.keys() - after.keys()):
        changes.append(PolicyChange("rule", "removed", key, datasets=_line_dataset(before[key])))
    for key in sorted(after.keys() - before.keys()):
        changes.append(PolicyChange("rule", "added", key, datasets=_line_dataset(after[key])))
    for name, kind in (("catalog.toml", "catalog"), ("systems.toml", "system")):
        was = dict(_flatten(_toml(old.files[name], name)))
        now = dict(_flatten(_toml(new.files[name], name)))
        for key in sorted(was.keys() | now.keys()):
            if was.get(key) == now.get(key) and (key in was) == (key in now):
                continue
            change = "added" if key not in was else "removed" if key not in now else "changed"
            datasets = frozenset(
                {key.split(".")[1]} if kind == "catalog" and key.startswith("datasets.") else ()
            )
            changes.append(
                PolicyChange(kind, change, key, was.get(key), now.get(key), datasets=datasets)
            )
    if old.files["model.conf"] != new.files["model.conf"]:
        changes.append(PolicyChange("model", "changed", "model.conf"))
    return changes
