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


class OpenClass(enum.StrEnum):
    """开放属性: whether the dataset is also opened to the public (政务数据开放)."""

    NOT_OPEN = "not_open"  # 不予开放
    CONDITIONAL_OPEN = "conditional_open"  # 有条件开放
    OPEN = "open"  # 无条件开放

    @property
    def label_zh(self) -> str:
        return {"not_open": "不予开放", "conditional_open": "有条件开放", "open": "无条件开放"}[
            self.value
        ]


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
    #: 数据长度 of the information item (characters or digits), when the provider states it.
    length: int | None = None


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
    #: Row limit of this dataset's tables when no ``p3`` line matches; None: the
    #: catalog's ``default_max_rows``.
    default_max_rows: int | None = None
    #: 信息资源代码 (前段码/后段码 per the guideline); empty when the provider has none yet.
    resource_code: str = ""
    #: 共享条件: what a consumer must meet (有条件共享) or why it is not shared (不予共享).
    share_condition: Text | None = None
    #: 开放属性.
    open_class: OpenClass = OpenClass.NOT_OPEN
    #: 发布日期.
    published: str = ""
    #: 关联类目: the catalogue categories (基础/主题/部门) the resource belongs to.
    categories: tuple[str, ...] = ()


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
    #: Row limit of a table when no ``p3`` line matches and its dataset names none: a
    #: policy setting (catalog.toml ``default_max_rows``), covered by the policy version.
    default_max_rows: int
    #: District → city, for the ``city`` generalisation mask.
    regions: Mapping[str, str] = field(default_factory=dict)

    def default_max_rows_of(self, dataset: str) -> int:
        """The row limit of ``dataset``'s tables when no ``p3`` line matches."""
        ds = self.datasets.get(dataset)
        if ds is not None and ds.default_max_rows is not None:
            return ds.default_max_rows
        return self.default_max_rows

    def table(self, qualified_name: str) -> Table | None:
        dataset, _, table = qualified_name.partition(".")
        ds = self.datasets.get(dataset)
        return ds.tables.get(table) if ds else None

    def tables(self) -> list[Table]:
        return [t for ds in self.datasets.values() for t in ds.tables.values()]
