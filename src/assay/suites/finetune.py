"""`assay finetune validate`: will a vendor accept this training file, what will training cost, and does it pay?

It joins the file's scan (datasets/finetune.py) to the vendor's epoch rule,
the training price (the target's `pricing.training_per_mtok`, else the bundled
table, else `--price`), the tuned model's inference prices (the catalog's
`ft:BASE`), and, with a project file that has a `workload:`, the break-even
against the target the tuned model would replace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from assay.catalog import ModelPrice, PriceBook, load_catalog
from assay.catalog.training import training_price
from assay.config import ProjectConfig, state_dir
from assay.datasets import data_dir, load_items
from assay.datasets.finetune import TrainingFile, scan_training_file
from assay.economics.training import BreakEven, break_even, default_epochs, training_cost
from assay.economics.workload import conversation_list_cost, volume
from assay.errors import AssayError, ConfigError

__all__ = ["TrainingAudit", "audit_training_file", "per_request_usd", "tuned_price"]


@dataclass
class TrainingAudit:
    """A training file's scan, and what training on it costs."""

    scan: TrainingFile
    model: str | None
    epochs: int
    epochs_source: str  # "given" | "openai rule" | "<vendor> default"
    billed_tokens: int
    price_per_mtok: Decimal | None
    price_source: str | None
    cost_usd: Decimal | None
    tuned: ModelPrice | None  # the tuned model's inference prices, when known
    base: ModelPrice | None
    breakeven: BreakEven | None
    eval_items: int = 0  # eval-suite items the file was checked against
    base_target: str | None = None  # the target the tuned model would replace

    def to_json(self) -> dict[str, Any]:
        s = self.scan
        return {
            "file": s.path,
            "format": s.format,
            "model": self.model,
            "examples": s.examples,
            "valid": s.valid,
            "ok": s.ok,
            "errors": [e.to_json() for e in s.errors],
            "error_counts": s.error_counts,
            "errors_shown": len(s.errors),
            "warnings": [w.to_json() for w in s.warnings],
            "tokens": {
                "tokenizer": s.tokenizer.name,
                "exact": s.tokenizer.exact,
                "note": s.tokenizer.note,
                "per_example": s.tokens.to_json(),
                "assistant_trained": s.assistant.to_json(),
                "messages": s.messages.to_json(),
                "limit_per_example": s.limit_tokens,
                "total": s.tokens.total,
            },
            "epochs": self.epochs,
            "epochs_source": self.epochs_source,
            "billed_tokens": self.billed_tokens,
            "price_per_mtok": None if self.price_per_mtok is None else float(self.price_per_mtok),
            "price_source": self.price_source,
            "cost_usd": None if self.cost_usd is None else float(self.cost_usd),
            "cost_is_estimate": not s.tokenizer.exact,
            "tuned_price": _price_json(self.tuned),
            "base_price": _price_json(self.base),
            "break_even": None if self.breakeven is None else self.breakeven.to_json(),
            "eval_items_checked": self.eval_items,
        }


def _price_json(p: ModelPrice | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"name": p.name, "input_per_mtok": float(p.input), "output_per_mtok": float(p.output)}


def tuned_price(model: str | None) -> ModelPrice | None:
    """The catalog's inference price of a model tuned from `model` (`ft:MODEL`), if it lists one."""
    if not model:
        return None
    catalog = load_catalog(state_dir())
    bare = model.split("/", 1)[1] if "/" in model else model
    names = [f"ft:{bare}"]
    if (known := training_price(bare)) is not None:
        names.append(f"ft:{known.model}")  # an alias (gpt-4o-mini) names its dated snapshot's tuned price
    for name in names:
        if (p := catalog.get(name)) is not None:
            return p
    return None


def per_request_usd(config: ProjectConfig, price: ModelPrice) -> Decimal:
    """What one interaction of the project's workload costs at `price` (a conversation over its turns)."""
    w = config.workload
    assert w is not None
    return conversation_list_cost(w, price) / w.turns_per_conversation


def _eval_questions(config: ProjectConfig | None, root: Path | None) -> list[str]:
    if config is None:
        return []
    questions: list[str] = []
    for suite in config.quality_suites:
        try:
            items = load_items(suite.dataset, data_dir(root), state_dir() / "datasets")
        except AssayError as e:
            raise ConfigError(f"suite {suite.name!r}: cannot load its items to check for contamination: {e}") from None
        questions += [it.question for it in items]
    return questions


def audit_training_file(
    path: str | Path,
    fmt: str,
    model: str | None = None,
    *,
    config: ProjectConfig | None = None,
    target: str | None = None,
    replaces: str | None = None,
    tuned_target: str | None = None,
    epochs: int | None = None,
    price_per_mtok: float | None = None,
    max_example_tokens: int | None = None,
    months: int = 12,
    data_root: Path | None = None,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> TrainingAudit:
    """Scan the file and price training on it; refuse inconsistent options before reading it."""
    tgt = config.target(target) if config is not None and target else None
    if target and config is None:
        raise ConfigError("--target needs the project file (-c assay.yaml) that defines it")
    model = model or (tgt.model if tgt else None)
    if replaces and (config is None or config.workload is None):
        raise ConfigError("--replaces needs a project file with a `workload:` section (its volume prices the saving)")
    questions = _eval_questions(config, data_root)
    scan = scan_training_file(
        path,
        fmt,
        model,
        max_example_tokens=max_example_tokens,
        eval_questions=questions,
        on_progress=on_progress,
        workers=workers,
    )
    n_epochs = epochs or default_epochs(scan.valid, fmt)
    source = "given" if epochs else ("openai rule" if fmt == "openai" else f"{fmt} default")
    billed = scan.billed_tokens(n_epochs)
    price, price_source = _training_rate(price_per_mtok, tgt, model)
    cost = training_cost(billed, price)
    tuned = tuned_price(model)
    base, be = None, None
    book, unpriced = PriceBook.known(config.targets, load_catalog(state_dir())) if config else (None, {})
    if tuned_target is not None:
        if config is None or book is None:
            raise ConfigError("--tuned needs the project file (-c assay.yaml) that defines it")
        tuned = book.prices.get(config.target(tuned_target).name)
        if tuned is None:
            raise ConfigError(f"--tuned {tuned_target}: no price known for it ({unpriced.get(tuned_target)})")
    if replaces and config is not None and book is not None:
        base = book.prices.get(config.target(replaces).name)
        if base is None:
            raise ConfigError(f"--replaces {replaces}: no price known for it ({unpriced.get(replaces, 'self-hosted')})")
        if tuned is None:
            raise ConfigError(
                f"no inference price for a tuned {model or 'model'} in the catalog; name the tuned model's target "
                "(--tuned TARGET, with its pricing) or measure both with `assay finetune compare`"
            )
        if cost is not None:
            volume = _monthly_interactions(config)
            be = break_even(cost, per_request_usd(config, base), per_request_usd(config, tuned), volume, months)
    return TrainingAudit(
        scan, model, n_epochs, source, billed, price, price_source, cost, tuned, base, be, len(questions), replaces
    )


def _monthly_interactions(config: ProjectConfig) -> Decimal:
    assert config.workload is not None
    return volume(config.workload).interactions


def _training_rate(given: float | None, tgt: Any, model: str | None) -> tuple[Decimal | None, str | None]:
    if given is not None:
        return Decimal(repr(given)).normalize(), "--price"
    if tgt is not None and tgt.pricing is not None and tgt.pricing.training_per_mtok is not None:
        return Decimal(repr(tgt.pricing.training_per_mtok)).normalize(), f"target {tgt.name}: pricing.training_per_mtok"
    known = training_price(model)
    if known is not None:
        return known.per_mtok, f"{known.model}: {known.source}"
    return None, None
