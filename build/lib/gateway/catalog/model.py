"""Catalog data model (信息资源目录).

Field names follow 《政务信息资源目录编制指南》: each dataset has a provider (提供方),
sharing attributes (共享属性), a grade (分级, GB/T 43697-2024) and an update cycle (更新周期);
each column is an information item (信息项) with its own sensitivity and default mask.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.domain import MaskSpec


class SharingClass(enum.StrEnum):
    UNCONDITIONAL = "unconditional"  # 无条件共享
    CONDITIONAL = "conditional"  # 有条件共享
    NOT_SHARED = "not_shared"  # 不予共享

    @property
    def label_zh(self) -> str:
        return {
            "unconditional": "无条件共享",
            "conditional": "有条件共享",
            "not_shared": "不予共享",
        }[self.value]


class Grade(enum.StrEnum):
    CORE = "core"  # 核心数据
    IMPORTANT = "important"  # 重要数据
    GENERAL = "general"  # 一般数据

    @property
    def label_zh(self) -> str:
        return {"core": "核心", "important": "重要", "general": "一般"}[self.value]


class Sensitivity(enum.StrEnum):
    PUBLIC = "public"  # 公开
    INTERNAL = "internal"  # 内部
    PERSONAL = "personal"  # 个人信息
    SENSITIVE_PERSONAL = "sensitive_personal"  # 敏感个人信息 (PIPL Art. 28)


@dataclass(frozen=True, slots=True)
class Text:
    """A bilingual description (UI text is Chinese and English)."""

    zh: str
    en: str

    def to_json(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    sensitivity: Sensitivity
    description: Text
    default_mask: MaskSpec | None = None


@dataclass(frozen=True, slots=True)
class Table:
    dataset: str
    name: str
    #: Physical name in the backend, ``table`` or ``schema.table``.
    source: str
    description: Text
    columns: Mapping[str, Column]

    @property
    def qualified_name(self) -> str:
        return f"{self.dataset}.{self.name}"

    def column(self, name: str) -> Column | None:
        return self.columns.get(name)


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    title: Text
    owner: str
    backend: str
    sharing_class: SharingClass
    grade: Grade
    update_cycle: str
    description: Text
    tables: Mapping[str, Table]
    #: Working days the owner has to answer an application (None: the deployment's
    #: GATEWAY_REPLY_DAYS, by default 10).
    reply_days: int | None = None


@dataclass(frozen=True, slots=True)
class Department:
    code: str
    name: Text


@dataclass(frozen=True, slots=True)
class Purpose:
    code: str
    name: Text
    #: Legal basis cited for the purpose (e.g. a regulation article), shown in the catalog.
    legal_basis: str = ""


@dataclass(frozen=True, slots=True)
class Catalog:
    datasets: Mapping[str, Dataset]
    departments: Mapping[str, Department]
    purposes: Mapping[str, Purpose]
    #: District → city, for the ``city`` generalisation mask.
    regions: Mapping[str, str] = field(default_factory=dict)

    def table(self, qualified_name: str) -> Table | None:
        dataset, _, table = qualified_name.partition(".")
        ds = self.datasets.get(dataset)
        return ds.tables.get(table) if ds else None

    def tables(self) -> list[Table]:
        return [t for ds in self.datasets.values() for t in ds.tables.values()]
