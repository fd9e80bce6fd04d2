"""The price catalog: a bundled table built from LiteLLM's public price map, and a refreshable cache.

`assay prices update` converts LiteLLM's `model_prices_and_context_window.json`
(USD per token) into our table (USD per million tokens, exact decimals) and
caches it under the state directory; the cache, when present, wins over the
bundled snapshot. Only chat models of the major API providers are kept.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from assay.catalog.prices import MILLION, ModelPrice, Tier, dec
from assay.errors import AssayError, ConfigError

__all__ = [
    "LITELLM_URL",
    "PROVIDERS",
    "Catalog",
    "cache_path",
    "convert_litellm",
    "load_catalog",
    "update_catalog",
]

LITELLM_URL = "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json"

# LiteLLM provider names kept in the table: the APIs assay speaks to, directly or through compatibility endpoints.
PROVIDERS = frozenset(
    {
        "openai",
        "anthropic",
        "azure",
        "azure_ai",
        "bedrock_converse",
        "bedrock",
        "vertex_ai-language-models",
        "vertex_ai-anthropic_models",
        "gemini",
        "mistral",
        "deepseek",
        "xai",
        "groq",
        "together_ai",
        "cohere_chat",
    }
)
_TIER_KEY = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")


@dataclass(frozen=True)
class Catalog:
    """Model prices by name, and where the table came from."""

    models: dict[str, ModelPrice]
    source: str
    built: str  # when the table was converted (UTC, ISO date)
    path: str  # the file it was read from

    def get(self, name: str) -> ModelPrice | None:
        """Exact name, else the name without a `provider/` prefix, else case-insensitively."""
        if name in self.models:
            return self.models[name]
        if "/" in name and (bare := name.split("/", 1)[1]) in self.models:
            return self.models[bare]
        lowered = name.lower()
        for key, price in self.models.items():
            if key.lower() == lowered:
                return price
        return None

    def similar(self, name: str, n: int = 3) -> list[str]:
        return difflib.get_close_matches(name, list(self.models), n=n, cutoff=0.6)

    def require(self, name: str) -> ModelPrice:
        price = self.get(name)
        if price is None:
            near = self.similar(name)
            hint = f"; similar: {', '.join(near)}" if near else ""
            raise AssayError(f"{name!r} is not in the price catalog ({len(self.models)} models){hint}")
        return price

    def search(self, text: str, limit: int = 20) -> list[str]:
        t = text.lower()
        return sorted(k for k in self.models if t in k.lower())[:limit]


def cache_path(state: Path) -> Path:
    return state / "catalog" / "prices.json"


def _bundled() -> Path:
    return Path(str(resources.files("assay.catalog").joinpath("prices.json")))


def load_catalog(state: Path | None = None) -> Catalog:
    """The cached table under `state` if `assay prices update` wrote one, else the bundled snapshot."""
    if state is not None and cache_path(state).is_file():
        return _read(cache_path(state))
    return _read(_bundled())


def _read(path: Path) -> Catalog:
    try:
        data = orjson.loads(path.read_bytes())
        models = {name: _from_row(name, row) for name, row in data["models"].items()}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, ArithmeticError) as e:
        raise AssayError(f"{path}: not a readable price catalog ({e}); run `assay prices update`") from None
    return Catalog(models, data.get("source", "?"), data.get("built", "?"), str(path))


def _from_row(name: str, row: dict[str, Any]) -> ModelPrice:
    def d(key: str) -> Decimal | None:
        v = row.get(key)
        return None if v is None else Decimal(v)

    return ModelPrice(
        name=name,
        input=Decimal(row["in"]),
        output=Decimal(row["out"]),
        cached_input=d("cache_read"),
        cache_write=d("cache_write"),
        reasoning=d("reasoning"),
        batch_input=d("batch_in"),
        batch_output=d("batch_out"),
        tiers=tuple(
            Tier(t[0], Decimal(t[1]), Decimal(t[2]), *(None if x is None else Decimal(x) for x in t[3:5]))
            for t in row.get("tiers", [])
        ),
        provider=row.get("provider"),
        context_window=row.get("context"),
        max_output=row.get("max_output"),
        deprecation_date=row.get("deprecation"),
    )


def _per_mtok(v: Any) -> str | None:
    """LiteLLM's USD-per-token float as an exact USD-per-million string."""
    if v is None or isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return format((dec(v) * MILLION).normalize(), "f")


def convert_litellm(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """LiteLLM's price map as our table: chat models of the kept providers, rates per million tokens."""
    models: dict[str, Any] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or entry.get("mode") != "chat":
            continue
        if entry.get("litellm_provider") not in PROVIDERS:
            continue
        inp, out = _per_mtok(entry.get("input_cost_per_token")), _per_mtok(entry.get("output_cost_per_token"))
        if inp is None or out is None:
            continue
        row: dict[str, Any] = {"provider": entry["litellm_provider"], "in": inp, "out": out}
        for ours, theirs in (
            ("cache_read", "cache_read_input_token_cost"),
            ("cache_write", "cache_creation_input_token_cost"),
            ("reasoning", "output_cost_per_reasoning_token"),
            ("batch_in", "input_cost_per_token_batches"),
            ("batch_out", "output_cost_per_token_batches"),
        ):
            if (v := _per_mtok(entry.get(theirs))) is not None:
                row[ours] = v
        tiers = []
        for key in entry:
            m = _TIER_KEY.match(key)
            if not m:
                continue
            k = m.group(1)
            t_out = _per_mtok(entry.get(f"output_cost_per_token_above_{k}k_tokens"))
            t_in = _per_mtok(entry[key])
            if t_in is None:
                continue
            tiers.append(
                [
                    int(k) * 1000,
                    t_in,
                    t_out if t_out is not None else out,
                    _per_mtok(entry.get(f"cache_read_input_token_cost_above_{k}k_tokens")),
                    _per_mtok(entry.get(f"cache_creation_input_token_cost_above_{k}k_tokens")),
                ]
            )
        if tiers:
            row["tiers"] = sorted(tiers)
        for ours, theirs in (("context", "max_input_tokens"), ("max_output", "max_output_tokens")):
            if isinstance(entry.get(theirs), int):
                row[ours] = entry[theirs]
        if isinstance(entry.get("deprecation_date"), str):
            row["deprecation"] = entry["deprecation_date"]
        models[name] = row
    if not models:
        raise AssayError(f"{source}: no chat-model prices; is this LiteLLM's model_prices_and_context_window.json?")
    return {"source": source, "built": time.strftime("%Y-%m-%d", time.gmtime()), "models": models}


def update_catalog(state: Path, source: str | None = None, timeout_s: float = 30.0) -> Catalog:
    """Fetch (URL) or read (file) LiteLLM's price map, convert it, and replace the cache atomically."""
    source = source or LITELLM_URL
    try:
        if re.match(r"^https?://", source):
            with urllib.request.urlopen(source, timeout=timeout_s) as resp:  # http(s) only, checked above
                body = resp.read()
        else:
            body = Path(source).read_bytes()
    except (urllib.error.URLError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise AssayError(f"cannot fetch {source}: {reason}; the current catalog is unchanged") from None
    except OSError as e:
        raise ConfigError(f"{source}: cannot read: {e.strerror}") from None
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ConfigError(f"{source}: not JSON ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a JSON object keyed by model name")
    table = convert_litellm(raw, source)
    dest = cache_path(state)
    write_table(table, dest)
    return _read(dest)


def write_table(table: dict[str, Any], dest: Path) -> None:
    """Write a converted table atomically: a reader sees the old file or the new one, never half."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".prices-", suffix=".json")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a price table is not a secret
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(table, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
