"""DESIGN.md's layering: a module imports only from its own layer and below."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "assay"
LAYERS = {
    "core": {"config", "model", "records", "errors", "clock"},
    "access": {"clients", "wire", "store", "simulator", "catalog", "datasets"},
    "engine": {"runner", "stats", "routing"},
    "work": {"suites", "economics", "decide", "experiments", "whatif"},
    "edges": {"report", "cli", "gateway", "__main__"},
}
RANK = {name: i for i, members in enumerate(LAYERS.values()) for name in members}


def test_imports_point_down() -> None:
    wrong = []
    for path in SRC.rglob("*.py"):
        top = path.relative_to(SRC).parts[0].removesuffix(".py")
        if top == "__init__":
            continue  # the package root re-exports the public API
        assert top in RANK, f"{top} is in no layer: add it to LAYERS (and to DESIGN.md)"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("assay."):
                other = node.module.split(".")[1]
                if RANK[other] > RANK[top]:
                    wrong.append(f"{path.relative_to(SRC)} imports {node.module}")
    assert not wrong, "imports pointing up:\n" + "\n".join(wrong)
