"""Named backends from ``backends.toml``.

::

    [backends.demo]
    dsn = "sqlite:${GATEWAY_STATE_DIR:-state}/demo.sqlite"
    # kind = "sqlite"   optional; must agree with the DSN when given

DSN forms are those of :mod:`gateway.dsn` but ``memory:``: ``sqlite:<path>``,
``duckdb:<path>``, ``postgresql://...`` (or ``postgres://``, optional ``?schema=``) and
``mysql://...`` (or ``mariadb://``). The scheme names the kind, so a libpq ``key=value``
string is not accepted. ``${VAR}`` and ``${VAR:-default}`` are replaced from
the environment mapping passed in (``:-`` also applies when VAR is set but empty, as in
the shell); substituted text is not scanned again. ``GATEWAY_BACKEND_<NAME>_DSN``
overrides replace a backend's DSN as they are, without interpolation.

Relative sqlite/duckdb paths are made absolute against the current directory at load
time, so a later ``chdir`` cannot point a backend at another file.

Every problem raises :class:`ConfigurationError` naming the key (``backends.demo.dsn``)
or the environment variable; DSNs are never echoed, as they may carry passwords.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.dsn import DsnKind, parse_dsn
from gateway.errors import ConfigurationError

__all__ = [
    "KINDS",
    "BackendConfig",
    "interpolate",
    "load_backend_configs",
]

#: The kinds of DSN a backend can be (every kind of :mod:`gateway.dsn` but ``memory:``).
KINDS: frozenset[DsnKind] = frozenset({"sqlite", "postgres", "mysql", "duckdb"})

_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")
_VAR_RE = re.compile(r"\$\{([^}]*)\}")
_VAR_BODY_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_ALLOWED_KEYS = frozenset({"dsn", "kind"})


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """One backend. ``dsn`` is left out of ``repr`` because it may hold a password."""

    name: str
    #: ``sqlite`` | ``postgres`` | ``mysql`` | ``duckdb``
    kind: str
    dsn: str = field(repr=False)


def interpolate(text: str, env: Mapping[str, str], *, where: str) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in ``text`` from ``env``.
    Raises ConfigurationError naming ``where`` for an unset VAR without default or a
    malformed reference."""
    if "${" in _VAR_RE.sub("", text):
        raise ConfigurationError(f"{where}: unterminated '${{' reference")

    def replace(match: re.Match[str]) -> str:
        body = _VAR_BODY_RE.fullmatch(match.group(1))
        if body is None:
            raise ConfigurationError(
                f"{where}: malformed reference ${{{match.group(1)}}}; "
                "use ${VAR} or ${VAR:-default}"
            )
        name, default = body.group(1), body.group(2)
        value = env.get(name)
        if default is not None:
            return value if value else default
        if value is None:
            raise ConfigurationError(
                f"{where}: environment variable {name} is not set "
                f"(give a default with ${{{name}:-...}})"
            )
        return value

    return _VAR_RE.sub(replace, text)


def load_backend_configs(
    path: Path,
    *,
    env: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
) -> dict[str, BackendConfig]:
    """Read ``path``, interpolate, apply ``overrides`` (backend name -> DSN, from
    ``GATEWAY_BACKEND_<NAME>_DSN``) and validate.

    Raises ConfigurationError naming the key: unreadable file, unknown keys, a name that
    cannot be given as an environment variable, unset variables, unknown DSN schemes, a
    ``kind`` that disagrees with the DSN, or an override for a backend the file does not
    declare (probably a typo that would otherwise be ignored silently).
    """
    overrides = {} if overrides is None else overrides
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read backends file {path}: {exc}") from exc
    extra = set(raw) - {"backends"}
    if extra:
        raise ConfigurationError(f"{path}: unknown top-level keys {sorted(extra)}")
    section = raw.get("backends", {})
    if not isinstance(section, dict):
        raise ConfigurationError(f"{path}: 'backends' must be a table")

    configs: dict[str, BackendConfig] = {}
    for name, entry in section.items():
        where = f"backends.{name}"
        if not _NAME_RE.fullmatch(name):
            raise ConfigurationError(
                f"{where}: a backend name must match [a-z][a-z0-9_]* "
                "(so GATEWAY_BACKEND_<NAME>_DSN can override it)"
            )
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{where} must be a table with a 'dsn'")
        unknown = set(entry) - _ALLOWED_KEYS
        if unknown:
            raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}")
        if name in overrides:
            key = f"GATEWAY_BACKEND_{name.upper()}_DSN"
            dsn = overrides[name]
        else:
            key = f"{where}.dsn"
            template = entry.get("dsn")
            if not isinstance(template, str):
                raise ConfigurationError(f"{key} is required and must be a string")
            dsn = interpolate(template, env, where=key)
        configs[name] = _config(name, dsn, entry.get("kind"), key=key, where=where)

    for name in overrides:
        if name not in configs:
            raise ConfigurationError(
                f"GATEWAY_BACKEND_{name.upper()}_DSN overrides backend {name!r}, "
                f"which {path.name} does not declare"
            )
    return configs


def _config(name: str, dsn: str, declared: object, *, key: str, where: str) -> BackendConfig:
    parsed = parse_dsn(dsn, kinds=KINDS, what=key)
    # Files are pinned to absolute paths now, so a later chdir cannot move a backend.
    files = parsed.kind in {"sqlite", "duckdb"}
    dsn = f"{parsed.kind}:{parsed.path}" if files else parsed.text
    if declared is not None and declared != parsed.kind:
        raise ConfigurationError(
            f"{where}.kind is {declared!r} but {key} names a {parsed.kind} database"
        )
    return BackendConfig(name=name, kind=parsed.kind, dsn=dsn)
