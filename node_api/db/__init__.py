"""Storage of the node: engine, current tables, and the versioned migration runner."""

from node_api.db.engine import Database
from node_api.db.migrations import Component, Migration, SchemaError, current_versions, migrate
from node_api.db.schema import COMPONENTS, CORE

__all__ = [
    "Database",
    "Component",
    "Migration",
    "SchemaError",
    "COMPONENTS",
    "CORE",
    "current_versions",
    "migrate",
]
