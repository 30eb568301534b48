"""Roles: who may do what. One enum, used by the registry (systems.toml ``roles``), the
HTTP guards and the audit API's read scope.

=====================  ===========================================================
role                   may
=====================  ===========================================================
``consumer``           query shared datasets, read the catalog and its own records
                       (every registered system has it; never written in files)
``provider_officer``   read the audit records of every access to its department's
                       datasets, with receipts, and export them
``auditor``            read and export the whole audit log (read-only)
=====================  ===========================================================
"""

from __future__ import annotations

import enum

__all__ = ["ASSIGNABLE_ROLES", "Role"]


class Role(enum.StrEnum):
    CONSUMER = "consumer"
    PROVIDER_OFFICER = "provider_officer"
    AUDITOR = "auditor"

    @property
    def label_zh(self) -> str:
        return _ZH[self]


_ZH = {
    Role.CONSUMER: "数据使用方系统",
    Role.PROVIDER_OFFICER: "提供方数据安全员",
    Role.AUDITOR: "审计员",
}

#: Roles a registry may grant explicitly (``consumer`` is implicit).
ASSIGNABLE_ROLES = frozenset({Role.PROVIDER_OFFICER, Role.AUDITOR})
