"""One statistics path: one meaning of "meets the SLO", one summary for load and cost, JSON unrounded."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from assay.config import SLO
from assay.economics import measure
from assay.records import Record
from assay.stats import summarize
from tests.conftest import ASSAY, cli_env

MS = 1_000_000


def rec(i: int, ok: bool = True, ttft: float = 100, e2e: float = 500, tokens: int = 10, **kw: object) -> Record:
    base: dict[str, object] = dict(
        run_id="r", target="t", suite="load", item_id=str(i), attempt=0, status="ok" if ok else "error",
        wall_start_s=float(i), sent_ns=MS, first_token_ns=MS + int(ttft * MS), done_ns=MS + int(e2e * MS),
        output_tokens=tokens,
    )  # fmt: skip
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


def test_meets_is_per_request_and_failures_miss() -> None:
    slo = SLO(ttft_ms=200, e2e_ms=1000, tpot_ms=100)
    assert slo.meets(rec(0))
    assert not slo.meets(rec(1, ttft=250)), "over one bound"
    assert not slo.meets(rec(2, ok=False, error_class="server_error")), "a failure is a miss"
    assert not slo.meets(rec(3, tokens=1)), "TPOT is bounded but a one-token reply has none: not met"
    assert SLO(ttft_ms=200).meets(rec(4, tokens=1)), "an unbounded figure does not matter"


def test_goodput_attainment_and_cost_throughput_count_the_same_requests() -> None:
    records = [rec(0), rec(1, ttft=250), rec(2, ok=False, error_class="timeout"), rec(3, e2e=1500), rec(4)]
    slo = SLO(ttft_ms=200, e2e_ms=1000)
    met = [r for r in records if slo.meets(r)]
    s = summarize("t", records, slo=slo, schedule_s=10.0)
    assert s.met_slo == len(met) == 2 and s.slo_attainment == pytest.approx(2 / 5)
    assert s.goodput_rps == pytest.approx(2 / 10.0)
    m = measure(records, slo)["t"]  # no schedule: over the run's own span
    span = summarize("t", records, slo=slo).span_s
    assert m.output_tokens_per_s == pytest.approx(sum(r.output_tokens for r in met) / span)
    # the summary's JSON says which bounds it counted against
    assert s.to_json()["slo"] == {"ttft_ms": 200.0, "e2e_ms": 1000.0, "attainment": pytest.approx(0.4)}


def test_cost_json_is_unrounded(tmp_path: Path) -> None:
    """$0.00375 a month must not print as 0.0 (cents) or 0.004 (3 places)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "targets:\n  - {name: a, base_url: 'http://127.0.0.1:9/v1', model: m, pricing: {input_per_mtok: 1, "
        "output_per_mtok: 3}}\n"
        "workload: {daily_active_users: 1, input_tokens_per_turn: 125, output_tokens_per_turn: 0}\n"
    )
    run = subprocess.run([ASSAY, "cost", "-c", str(cfg), "--json"], cwd=tmp_path, env=cli_env(tmp_path),
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    t = orjson.loads(run.stdout)["targets"]["a"]
    exact = Decimal(30) * Decimal(125) / Decimal(1_000_000)  # 30 interactions of 125 input tokens at $1/M
    assert t["monthly_cost_usd"] == float(exact) == 0.00375
    assert t["cost_per_interaction_usd"] == float(exact / 30)


def test_every_scorer_of_the_registry_is_documented() -> None:
    from assay.suites.scorers import SCORER_NAMES

    doc = (Path(__file__).resolve().parents[2] / "docs" / "EVAL.md").read_text(encoding="utf-8")
    missing = [n for n in SCORER_NAMES if f"| `{n}` |" not in doc]
    assert not missing, f"docs/EVAL.md's scorer table lacks {missing}"
