"""docs/ARCHITECTURE.md names every module, so a newcomer can find where each thing lives."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src" / "assay"


def test_every_module_is_in_the_architecture_doc() -> None:
    doc = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    modules = sorted(
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if p.name != "__init__.py" and "__pycache__" not in p.parts
    )
    missing = [m for m in modules if m not in doc]
    assert not missing, "modules missing from docs/ARCHITECTURE.md (name them by their path under src/assay):\n" + (
        "\n".join(missing)
    )


def test_the_doc_names_no_module_that_is_gone() -> None:
    import re

    doc = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = {m for m in re.findall(r"`([a-z_]+(?:/[a-z_]+)*\.py)`", doc) if not m.startswith("tests/")}
    gone = sorted(m for m in named if not (SRC / m).exists())
    assert not gone, f"docs/ARCHITECTURE.md names modules that do not exist: {gone}"
