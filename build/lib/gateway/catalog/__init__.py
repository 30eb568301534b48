"""The catalog of shared datasets: what exists, who owns it, how it may be shared."""

from gateway.catalog.load import load_catalog
from gateway.catalog.model import (
    Catalog,
    Column,
    Dataset,
    Department,
    Grade,
    Purpose,
    Sensitivity,
    SharingClass,
    Table,
    Text,
)

__all__ = [
    "Catalog",
    "Column",
    "Dataset",
    "Department",
    "Grade",
    "Purpose",
    "Sensitivity",
    "SharingClass",
    "Table",
    "Text",
    "load_catalog",
]
