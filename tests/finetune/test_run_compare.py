"""`assay finetune run` and `compare` on the command line against the simulator in its own process: the job's
lifecycle with every API call recorded, a failing upload, a job that fails midway, resume, and a base/tuned pair
whose item-level correctness is known, so the difference and p-value are checked exactly."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from scipy.stats import binomtest
from statsmodels.stats.multitest import multipletests

from assay.datasets import load_items
from assay.simulator import SimulatorProcess, load_spec, tuned_profile
from assay.simulator.answers import AnswerKey
from assay.store import Store
from tests.conftest import ASSAY, PRICE, cli_env

SEED = 7
FAST = "validate_s: 0.05, queue_s: 0.1, min_run_s: 0.3"
PROFILE = f"""
vendors:
  - name: v
    models:
      - name: base
        ttft_ms: 2
        itl_ms: 1
        output_tokens: 6
        answers: {{accuracy: 0.45, by_tag: {{negation: 0.95}}}}
        fine_tuning: {{{FAST}, gain: 0.35, gain_by_tag: {{negation: -0.95}}}}
      - name: breaks
        fine_tuning: {{{FAST}, job_failure: 1.0, fail_at: 0.5}}
  - name: flaky
    models:
      - name: base
        fine_tuning: {{{FAST}, upload_failure: 1.0}}
knowledge: [demo-qa]
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatorProcess, Path]]:
    path = tmp_path_factory.mktemp("sim") / "vendors.yaml"
    path.write_text(PROFILE)
    with SimulatorProcess(profile=path, seed=SEED) as s:
        yield s, path


def training_file(tmp_path: Path, n: int = 30) -> Path:
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": f"What is {i} times 3?"},
                {"role": "assistant", "content": f"{3 * i}."},
            ]
        }
        for i in range(n)
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def project(tmp_path: Path, sim: SimulatorProcess, extra_targets: str = "") -> Path:
    path = tmp_path / "assay.yaml"
    path.write_text(
        "targets:\n"
        f"  - {{name: base, base_url: '{sim.urls['v']}/v1', model: base, pricing: {PRICE}}}\n"
        f"  - {{name: breaks, base_url: '{sim.urls['v']}/v1', model: breaks, pricing: {PRICE}}}\n"
        f"  - {{name: flaky, base_url: '{sim.urls['flaky']}/v1', model: base, pricing: {PRICE}}}\n"
        + extra_targets
        + "suites:\n  - {name: qa, dataset: demo-qa, scorer: exact}\n"
        "workload: {daily_active_users: 100, input_tokens_per_turn: 50, output_tokens_per_turn: 20}\n"
    )
    return path


def assay(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ASSAY, *args], cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=timeout
    )


def finetune_log(sim: SimulatorProcess, vendor: str) -> list[dict[str, object]]:
    import urllib.request

    with urllib.request.urlopen(sim.urls[vendor] + "/_assay/requests", timeout=10) as r:
        rows: list[dict[str, object]] = json.loads(r.read())["requests"]
    return [e for e in rows if e.get("api") == "finetune"]


def test_a_job_runs_to_a_servable_model_and_every_call_is_a_record(
    tmp_path: Path, sim: tuple[SimulatorProcess, Path]
) -> None:
    s, _ = sim
    cfg = project(tmp_path, s)
    before = len(finetune_log(s, "v"))
    r = assay(
        tmp_path,
        "finetune",
        "run",
        "-c",
        str(cfg),
        "--target",
        "base",
        "--file",
        str(training_file(tmp_path)),
        "--poll",
        "0.05",
        "--suffix",
        "qa",
        "--emit-target",
        str(tmp_path / "tuned.yaml"),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "succeeded" and out["fine_tuned_model"].startswith("ft:base:sim:qa:")
    assert out["trained_tokens"] > 0 and out["failed_calls"] == 0
    assert set(out["timeline"]) >= {"validating_files_s", "queued_s", "running_s", "total_s"}
    assert out["timeline"]["running_s"] >= 0.25  # the profile's min_run_s, observed through polls
    with Store(tmp_path / ".assay" / "assay.db") as store:
        info = store.run(out["run_id"])
        records = store.records(out["run_id"])
    assert info.kind == "finetune" and info.status == "complete"
    served = finetune_log(s, "v")[before:]
    assert len(records) == len(served) == out["calls"]  # every call the vendor saw is one Record
    ops = [json.loads(rec.prompt or "{}")["op"] for rec in sorted(records, key=lambda x: x.sent_ns)]
    assert ops[:2] == ["files.create", "fine_tuning.jobs.create"]
    assert set(ops[2:]) == {"fine_tuning.jobs.retrieve", "fine_tuning.jobs.list_events"}
    assert all(rec.ok and rec.http_status == 200 and rec.e2e_ms is not None for rec in records)
    emitted = yaml.safe_load((tmp_path / "tuned.yaml").read_text())
    assert emitted[0]["name"] == "base-tuned" and emitted[0]["model"] == out["fine_tuned_model"]


def test_a_failing_upload_is_retried_recorded_and_exits_1(tmp_path: Path, sim: tuple[SimulatorProcess, Path]) -> None:
    s, _ = sim
    cfg = project(tmp_path, s)
    r = assay(
        tmp_path,
        "finetune",
        "run",
        "-c",
        str(cfg),
        "--target",
        "flaky",
        "--file",
        str(training_file(tmp_path)),
        "--retries",
        "2",
        "--poll",
        "0.05",
    )
    assert r.returncode == 1 and "upload failed" in r.stderr
    with Store(tmp_path / ".assay" / "assay.db") as store:
        run = store.runs()[0]
        records = store.records(run.run_id)
    assert [(x.item_id, x.attempt, x.http_status, x.error_class, x.final) for x in records] == [
        ("files.create", 0, 500, "server_error", False),
        ("files.create", 1, 500, "server_error", False),
        ("files.create", 2, 500, "server_error", True),
    ]
    assert run.status == "interrupted"  # resumable: `assay finetune run --resume`


def test_a_job_that_fails_midway(tmp_path: Path, sim: tuple[SimulatorProcess, Path]) -> None:
    s, _ = sim
    cfg = project(tmp_path, s)
    r = assay(
        tmp_path,
        "finetune",
        "run",
        "-c",
        str(cfg),
        "--target",
        "breaks",
        "--file",
        str(training_file(tmp_path)),
        "--poll",
        "0.05",
        "--json",
    )
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["status"] == "failed" and out["fine_tuned_model"] is None
    assert out["error"]["code"] == "internal_error"
    assert "running_s" in out["timeline"]  # it had started training


def test_a_bad_training_file_is_refused_before_anything_is_sent(
    tmp_path: Path, sim: tuple[SimulatorProcess, Path]
) -> None:
    s, _ = sim
    cfg = project(tmp_path, s)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n' * 12)
    before = len(finetune_log(s, "v"))
    r = assay(tmp_path, "finetune", "run", "-c", str(cfg), "--target", "base", "--file", str(bad))
    assert r.returncode == 2 and "example_missing_assistant_message" in r.stderr
    assert len(finetune_log(s, "v")) == before and not (tmp_path / ".assay" / "assay.db").exists()


def test_compare_base_and_tuned_exactly(tmp_path: Path, sim: tuple[SimulatorProcess, Path]) -> None:
    s, profile = sim
    cfg = project(tmp_path, s)
    r = assay(
        tmp_path,
        "finetune",
        "run",
        "-c",
        str(cfg),
        "--target",
        "base",
        "--file",
        str(training_file(tmp_path)),
        "--poll",
        "0.05",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    tuned_model = job["fine_tuned_model"]
    cfg = project(
        tmp_path,
        s,
        f"  - {{name: tuned, base_url: '{s.urls['v']}/v1', model: '{tuned_model}', "
        "pricing: {input_per_mtok: 0.5, output_per_mtok: 1}}\n",
    )
    r = assay(
        tmp_path,
        "finetune",
        "compare",
        "-c",
        str(cfg),
        "--base",
        "base",
        "--tuned",
        "tuned",
        "--suite",
        "qa",
        "--training-run",
        job["run_id"],
        "--json",
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)

    # Ground truth from the simulator's own answer key: which items each model answers right.
    spec = load_spec(profile)
    base_profile = spec.vendor("v").models[0]
    tuned = tuned_profile(base_profile, tuned_model)
    items = load_items("demo-qa", None, tmp_path)
    key = AnswerKey(items)
    right_b = {it.id: key.answer(base_profile.answers, SEED, "base", it)[1] for it in items}
    right_t = {it.id: key.answer(tuned.answers, SEED, tuned.draws_as or tuned.name, it)[1] for it in items}
    n = len(items)
    t_only = sum(right_t[i] and not right_b[i] for i in right_b)
    b_only = sum(right_b[i] and not right_t[i] for i in right_b)
    assert got["n"] == n and (got["tuned_only"], got["base_only"]) == (t_only, b_only)
    assert got["diff"] == pytest.approx((sum(right_t.values()) - sum(right_b.values())) / n)
    assert got["p_value"] == pytest.approx(binomtest(min(t_only, b_only), t_only + b_only, 0.5).pvalue)
    lo, hi = got["ci95"]
    assert lo <= got["diff"] <= hi

    # Per tag: the same counts, the same exact test, Holm across the tags (statsmodels as the reference).
    tags = sorted({t for it in items for t in it.tags})
    p_ref, diffs = [], {}
    for tag in tags:
        ids = [it.id for it in items if tag in it.tags]
        to, bo = sum(right_t[i] and not right_b[i] for i in ids), sum(right_b[i] and not right_t[i] for i in ids)
        p_ref.append(binomtest(min(to, bo), to + bo, 0.5).pvalue if to + bo else 1.0)
        diffs[tag] = (sum(right_t[i] for i in ids) - sum(right_b[i] for i in ids)) / len(ids)
    holm_ref = dict(zip(tags, multipletests(p_ref, method="holm")[1], strict=True))
    by_tag = {x["tag"]: x for x in got["slices"]}
    assert set(by_tag) == set(tags)
    for tag in tags:
        assert by_tag[tag]["diff"] == pytest.approx(diffs[tag])
        assert by_tag[tag]["p_holm"] == pytest.approx(holm_ref[tag])
    assert diffs["negation"] < 0 < got["diff"]  # better overall, worse on negation: forgetting, by construction

    # Cost and latency per request are the measured ones; the break-even uses them and the job's trained tokens.
    with Store(tmp_path / ".assay" / "assay.db") as store:
        recs = [x for x in store.records(got["run_id"]) if x.target == "tuned"]
    assert got["cost_per_request_usd"]["tuned"] == pytest.approx(sum(x.cost_usd or 0 for x in recs) / n)
    assert got["training_usd"] is None or got["training_usd"] >= 0
    assert "trained tokens" in got["training_source"]

    r = assay(
        tmp_path,
        "finetune",
        "compare",
        "-c",
        str(cfg),
        "--base",
        "base",
        "--tuned",
        "tuned",
        "--suite",
        "qa",
        "--run",
        got["run_id"],
        "--training-usd",
        "5",
    )
    assert r.returncode == 0, r.stderr
    assert "tuned − base" in r.stdout and "by tag" in r.stdout and "negation" in r.stdout
    # The scorecard of the comparison's eval run has the fine-tuning section, with the same figures.
    r = assay(tmp_path, "report", got["run_id"])
    assert r.returncode == 0, r.stderr
    md = next((tmp_path / "reports").glob(f"{got['run_id']}*/scorecard.md")).read_text()
    section = md.split("## Fine-tuning: base against tuned", 1)[1].split("\n## ", 1)[0]
    assert f"{got['diff'] * 100:+.1f}".replace("-", "−") in section and "| negation |" in section
    assert "Training cost unknown" in section and "no training price known for base" in section
