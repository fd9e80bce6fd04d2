"""Rebuild the bundled price table from a copy of LiteLLM's price map.

    python scripts/build_catalog.py ../shared/datasets/prices/model_prices_and_context_window.json "litellm 1.109.1"

Users refresh their own copy with `assay prices update`; this script is for
shipping a newer snapshot with assay itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from assay.catalog.table import convert_litellm, write_table

if __name__ == "__main__":
    src, version = Path(sys.argv[1]), sys.argv[2]
    table = convert_litellm(orjson.loads(src.read_bytes()), f"LiteLLM model_prices_and_context_window.json ({version})")
    dest = Path(__file__).resolve().parent.parent / "src" / "assay" / "catalog" / "prices.json"
    write_table(table, dest)
    print(f"{dest}: {len(table['models'])} models")
