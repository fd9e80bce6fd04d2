"""The run store (SQLite by default)."""

from assay.store.schema import SCHEMA_VERSION, migrate
from assay.store.sqlite import RecordWriter, RunInfo, Store, connect

__all__ = ["SCHEMA_VERSION", "RecordWriter", "RunInfo", "Store", "connect", "migrate"]
