"""The run store (SQLite by default) and exports of its Records."""

from assay.store.export import EXPORT_COLUMNS, export_records, write_export
from assay.store.schema import SCHEMA_VERSION, migrate
from assay.store.sqlite import RecordWriter, RunInfo, Store, connect

__all__ = [
    "EXPORT_COLUMNS",
    "SCHEMA_VERSION",
    "RecordWriter",
    "RunInfo",
    "Store",
    "connect",
    "export_records",
    "migrate",
    "write_export",
]
