"""The console's database file: its schema as versioned migrations (`schema.py`) and the one way to open it
(`database.py`). The stores that keep rows in it (devices, pins, rollouts, audit heads) open it through here.
Qt-free."""

from edge_console.client.storage.database import (
    ConsoleDatabase,
    MigrationFailed,
    UnknownSchemaVersion,
    open_or_share,
)
from edge_console.client.storage.schema import MIGRATIONS, SCHEMA_VERSION, Migration

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "ConsoleDatabase", "Migration", "MigrationFailed", "UnknownSchemaVersion",
           "open_or_share"]
