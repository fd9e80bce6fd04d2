"""Public API: every package's `__all__` is sorted, complete and importable."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = [
    "assay",
    "assay.clients",
    "assay.simulator",
    "assay.wire",
    "assay.store",
    "assay.runner",
    "assay.stats",
    "assay.errors",
    "assay.model",
    "assay.config",
    "assay.clock",
]


def _isort_key(name: str) -> tuple[int, str]:
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[0].isupper() else 2
    return kind, name


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=_isort_key), "constants, then classes, then functions, each sorted"
    for item in exported:
        assert hasattr(module, item), f"{name}.{item} is in __all__ but missing"


@pytest.mark.parametrize("name", ["assay.errors", "assay.model", "assay.clients", "assay.simulator", "assay.wire"])
def test_public_classes_are_exported(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        n
        for n, obj in vars(module).items()
        if inspect.isclass(obj) and not n.startswith("_") and obj.__module__.startswith(name)
    }
    assert public <= set(module.__all__)


def test_version_matches_package_metadata() -> None:
    from importlib.metadata import version

    import assay

    assert assay.__version__ == version("llm-assay")
