"""Roles: who may do what. One enum, used by the system registry (systems.toml
``roles``), people's accounts, the HTTP guards and the audit API's read scope. The
permission matrix (which endpoint each role may call) is in docs/roles.md and tested
endpoint by endpoint.

=====================  =========================================================  ==========
role                   may                                                        held by
=====================  =========================================================  ==========
``consumer``           query shared datasets under its grants, read the catalog   systems
                       and its own audit records (implicit for every system)
``applicant``          申请人: draft, submit, renew and withdraw its              people
                       department's applications; see its grants, quotas, usage
``provider_officer``   提供方安全员: decide applications for its department's      both
                       datasets, revoke their grants, read the audit records of
                       every access to them
``coordinator``        数据局协调员: see every application and its history,        people
                       comment, arbitrate escalated ones; sharing statistics
``auditor``            审计员: read and export the whole audit log; nothing else   both
``administrator``      管理员: accounts, roles, second factors; cannot decide      people
                       applications or touch audit records
=====================  =========================================================  ==========
"""

from __future__ import annotations

import enum

__all__ = ["PERSON_ROLES", "SYSTEM_ROLES", "Role"]


class Role(enum.StrEnum):
    CONSUMER = "consumer"
    APPLICANT = "applicant"
    PROVIDER_OFFICER = "provider_officer"
    COORDINATOR = "coordinator"
    AUDITOR = "auditor"
    ADMINISTRATOR = "administrator"

    @property
    def label_zh(self) -> str:
        return _ZH[self]


_ZH = {
    Role.CONSUMER: "数据使用方系统",
    Role.APPLICANT: "申请人",
    Role.PROVIDER_OFFICER: "提供方数据安全员",
    Role.COORDINATOR: "数据局协调员",
    Role.AUDITOR: "审计员",
    Role.ADMINISTRATOR: "管理员",
}

#: Roles a registered system may hold besides ``consumer`` (systems.toml ``roles``).
SYSTEM_ROLES = frozenset({Role.PROVIDER_OFFICER, Role.AUDITOR})

#: Roles a person's account may hold.
PERSON_ROLES = frozenset(
    {Role.APPLICANT, Role.PROVIDER_OFFICER, Role.COORDINATOR, Role.AUDITOR, Role.ADMINISTRATOR}
)
