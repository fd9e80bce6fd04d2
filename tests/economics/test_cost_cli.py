"""`assay cost`, `assay tco` and `assay prices` as a user runs them: JSON contracts, the cache, a measured run."""

from __future__ import annotations

import sqlite3
import subprocess
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from assay.cli.demo import demo_config_text
from assay.simulator import SimulatorProcess
from tests.conftest import ASSAY, DATA_DIR, cli_env, needs_data

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "support-chatbot.yaml"
SHARED_PRICES = DATA_DIR / "prices" / "model_prices_and_context_window.json"


def assay(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [ASSAY, *args], cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    if check:
        assert run.returncode == 0, run.stderr
    return run


def test_cost_json_contract(tmp_path: Path) -> None:
    out = orjson.loads(assay(tmp_path, "cost", "-c", str(EXAMPLE), "--json").stdout)
    assert set(out["targets"]) == {"openai-mini", "claude-haiku", "llama-vllm"}
    for name, t in out["targets"].items():
        keys = {"cost_per_interaction_usd", "cost_per_conversation_usd", "monthly_cost_usd"}
        assert keys | {"within_budget", "meets_cost_per_interaction"} <= set(t), name
        assert isinstance(t["within_budget"], bool) and isinstance(t["meets_cost_per_interaction"], bool)
        assert t["cost_per_conversation_usd"] == pytest.approx(t["cost_per_interaction_usd"] * 5, rel=1e-6)
        assert t["within_budget"] == (t["monthly_cost_usd"] <= 500)
    assert out["targets"]["openai-mini"]["monthly_cost_usd"] == 40.5
    assert out["targets"]["llama-vllm"]["within_budget"] is False
    assert out["workload"]["interactions_per_month"] == 150_000


def test_tco_json_series_totals_and_break_evens(tmp_path: Path) -> None:
    out = orjson.loads(assay(tmp_path, "tco", "-c", str(EXAMPLE), "--months", "24", "--json").stdout)
    assert out["months"] == 24
    assert set(out["targets"]["claude-haiku"]) == {"serverless", "provisioned"}
    for arches in out["targets"].values():
        for entry in arches.values():
            assert len(entry["monthly_usd"]) == 24
            assert entry["total_usd"] == pytest.approx(sum(entry["monthly_usd"]), abs=0.05)
            assert entry["sensitivity"], "a tornado for every option"
    mini = out["targets"]["openai-mini"]["serverless"]["monthly_usd"]
    assert mini[1] == pytest.approx(mini[0] * 1.05, abs=0.01)  # 5% monthly growth, in cents
    assert out["cheapest"] == "openai-mini/serverless"
    pairs = {(b["a"], b["b"]) for b in out["break_even"]}
    assert ("claude-haiku/serverless", "llama-vllm/self_hosted") in pairs
    llama = out["targets"]["llama-vllm"]["self_hosted"]["break_even"]
    assert {b["vs"] for b in llama} >= {"claude-haiku/serverless"}


def test_tables_read_at_a_glance(tmp_path: Path) -> None:
    cost = assay(tmp_path, "cost", "-c", str(EXAMPLE)).stdout
    assert "openai-mini" in cost and "$40.50" in cost and "✗ $2,002" in cost
    assert "claude-haiku bought another way, per month: provisioned $4,320" in cost
    tco = assay(tmp_path, "tco", "-c", str(EXAMPLE)).stdout
    assert "openai-mini/serverless  ← cheapest" in tco
    assert "claude-haiku/serverless is cheaper up to 7,605 users/day" in tco


def test_cost_without_a_workload_says_what_to_add(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("targets:\n  - {name: a, base_url: 'http://x/v1', model: gpt-4o-mini}\n")
    run = assay(tmp_path, "cost", "-c", str(cfg), check=False)
    assert run.returncode == 2 and "no `workload:` section" in run.stderr


@needs_data("prices", "model_prices_and_context_window.json")
def test_prices_update_caches_and_bad_sources_change_nothing(tmp_path: Path) -> None:
    cache = tmp_path / ".assay" / "catalog" / "prices.json"
    bad = assay(tmp_path, "prices", "update", "--from", str(tmp_path / "missing.json"), check=False)
    assert bad.returncode == 2 and "cannot read" in bad.stderr and not cache.exists()
    (tmp_path / "not-prices.json").write_text('{"x": 1}')
    bad = assay(tmp_path, "prices", "update", "--from", "not-prices.json", check=False)
    assert bad.returncode == 1 and "no chat-model prices" in bad.stderr and not cache.exists()
    ok = assay(tmp_path, "prices", "update", "--from", str(SHARED_PRICES))
    assert cache.exists() and "models from" in ok.stdout
    shown = orjson.loads(assay(tmp_path, "prices", "show", "gpt-4o-mini", "--json").stdout)
    assert shown["gpt-4o-mini"]["input_per_mtok"] == 0.15 and shown["gpt-4o-mini"]["output_per_mtok"] == 0.6
    unknown = assay(tmp_path, "prices", "show", "gpt-4o-mnii", check=False)
    assert unknown.returncode == 1 and "similar: gpt-4o-mini" in unknown.stderr


def test_measured_run_prices_every_attempt_and_feeds_cost(tmp_path: Path, demo_process: SimulatorProcess) -> None:
    (tmp_path / "assay.yaml").write_text(demo_config_text(demo_process.urls))
    assay(
        tmp_path, "probe", "-c", "assay.yaml", "-n", "30", "--concurrency", "6", "--max-tokens", "40", "--retries", "1"
    )
    db = sqlite3.connect(tmp_path / ".assay" / "assay.db")
    rows = db.execute(
        "SELECT target, status, input_tokens, output_tokens, cost_usd, error_class FROM records"
    ).fetchall()
    prices = {"swift": (Decimal("0.2"), Decimal("0.8")), "atlas": (Decimal(5), Decimal(25))}
    for target, _status, inp, out, cost, error in rows:
        assert cost is not None, "every attempt is priced"
        if target in prices:
            pin, pout = prices[target]
            assert cost == pytest.approx(float((inp * pin + out * pout) / 1_000_000), rel=1e-12)
        if error in ("rate_limited", "server_error", "overloaded"):
            assert cost == 0.0, "an attempt refused before generating bills nothing"
    declared = orjson.loads(assay(tmp_path, "cost", "-c", "assay.yaml", "--run", "latest", "--json").stdout)
    out = orjson.loads(
        assay(tmp_path, "cost", "-c", "assay.yaml", "--run", "latest", "--measured-tokens", "--json").stdout
    )
    for name, t in out["targets"].items():
        m = t["measured"]
        spent = sum(c for tg, _, _, _, c, _ in rows if tg == name)
        assert m["cost_usd"] == pytest.approx(spent, abs=1e-8)
        assert m["cost_per_success_usd"] == pytest.approx(spent / m["successes"], rel=1e-6)
        assert t["tokens_per_turn"]["source"] == "measured" and t["tokens_per_turn"]["run_id"] == out["run_id"]
        assert t["tokens_per_turn"]["output"] <= 40
        assert t["checks"]["p95_latency_ms"]["value"] == pytest.approx(m["e2e_ms"]["p95"], abs=0.05)
        assert isinstance(t["meets_p95_latency"], bool)
        # A probe's one short prompt is not the workload: without --measured-tokens the declared tokens stand.
        d = declared["targets"][name]
        assert d["tokens_per_turn"]["source"] == "declared" and d["tokens_per_turn"]["input_new"] == 250
        assert d["measured"]["cost_usd"] == m["cost_usd"]


def test_cost_doc_shows_what_the_commands_print(tmp_path: Path) -> None:
    """docs/COST.md quotes the example's output; it must not drift from what assay prints."""
    doc = (REPO / "docs" / "COST.md").read_text()
    readme = (REPO / "README.md").read_text()
    cost = assay(tmp_path, "cost", "-c", str(EXAMPLE)).stdout
    tco = assay(tmp_path, "tco", "-c", str(EXAMPLE)).stdout
    for line in cost.splitlines():
        if line.startswith(" openai-mini") or line.startswith(" claude-haiku") or line.startswith(" llama-vllm"):
            assert line.rstrip() in doc, line
            assert line.rstrip()[:100] in readme, line
    for line in tco.splitlines():
        if "/" in line and line.startswith(" ") and "$" in line:
            assert line.rstrip() in doc, line
    for figure in ("7,605 users/day", "77,877 users/day", "$2,717–$5,240"):
        assert figure in tco and figure in doc
