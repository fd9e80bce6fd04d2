"""Cross-check against lm-evaluation-harness: the same GSM8K items, the same simulated target.

lm-eval is installed into a throwaway virtualenv (default /tmp/assay-peers/lm-eval,
never committed, never a dependency of assay) and run with its own gsm8k task,
pointed at the local GSM8K copy instead of the Hugging Face hub. assay runs the
same items with the same prompt ("Question: ...\\nAnswer:", zero-shot). The
simulated model answers each item right or wrong deterministically, whatever the
harness, so the two accuracies must agree item by item; the wall times give the
throughput ratio.

    ASSAY_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/peers/lm_eval_gsm8k.py [--items 1319]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peer_venv import ensure_peer  # the sibling module; scripts run with benchmarks/peers/ on sys.path

from assay.datasets import data_dir
from assay.simulator import SimulatorProcess
from assay.store import Store

LM_EVAL = "lm-eval[api]==0.4.13"
PROFILE = """\
vendors:
  - name: peer
    models:
      - name: gsm
        ttft_ms: 0
        itl_ms: 0
        answers: {accuracy: 0.7, by_dataset: {gsm8k: 0.7}}
knowledge: [gsm8k]
"""
TASK = """\
task: gsm8k_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: false
    regexes_to_ignore: [",", "\\\\$", "(?s).*#### ", "\\\\.$"]
generation_kwargs:
  until: ["Question:"]
  do_sample: false
  temperature: 0.0
num_fewshot: 0
filter_list:
  - name: flexible-extract
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(-?[$0-9.,]{{2,}})|(-?[0-9]+)"
      - function: take_first
"""


def run_lm_eval(
    exe: Path, url: str, tasks: Path, out: Path, items: int, concurrency: int
) -> tuple[float, dict[int, bool]]:
    args = f"model=gsm,base_url={url}/v1/chat/completions,num_concurrent={concurrency},max_retries=3"
    args += ",tokenizer_backend=none"
    cmd = [
        str(exe), "--model", "local-chat-completions", "--model_args", args, "--tasks", "gsm8k_local",
        "--include_path", str(tasks), "--apply_chat_template", "--limit", str(items),
        "--output_path", str(out), "--log_samples",
    ]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - t0
    samples = next(out.rglob("samples_gsm8k_local_*.jsonl"))
    verdicts = {}
    for line in samples.read_text().splitlines():
        row = json.loads(line)
        verdicts[int(row["doc_id"])] = bool(row["exact_match"])
    return wall, verdicts


def run_assay(url: str, items: int, concurrency: int, home: Path) -> tuple[float, dict[int, bool]]:
    """`assay eval` as a user runs it (a fresh process, like lm_eval), then its Records read back."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "assay.yaml").write_text(
        f"""
targets:
  - {{name: peer, base_url: "{url}/v1", model: gsm, pricing: {{input_per_mtok: 0, output_per_mtok: 0}}}}
suites:
  - name: gsm8k
    dataset: gsm8k
    scorer: numeric
    limit: {items}
    template: "Question: {{{{ question }}}}\\nAnswer:"
"""
    )
    assay = Path(sys.executable).parent / "assay"
    cmd = [
        str(assay),
        "eval",
        "-c",
        str(home / "assay.yaml"),
        "--concurrency",
        str(concurrency),
        "--no-cache",
        "--json",
    ]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "ASSAY_HOME": str(home)})
    wall = time.perf_counter() - t0
    run_id = json.loads(out.stdout)["run_id"]
    with Store(home / "assay.db") as store:
        rows = [(r, a) for r, a in store.iter_annotated(run_id) if r.final and r.ok and a.score is not None]
    return wall, {int(r.item_id.removeprefix("gsm8k-")): bool(a.score and a.score.passed) for r, a in rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1319)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "assay-peers" / "lm-eval")
    args = ap.parse_args()
    root = data_dir()
    if root is None or not (root / "gsm8k" / "test.jsonl").exists():
        sys.exit("set ASSAY_DATA_DIR to a folder with gsm8k/test.jsonl (e.g. ../shared/datasets)")
    exe = ensure_peer(args.venv, "lm_eval", LM_EVAL)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "vendors.yaml").write_text(PROFILE)
        tasks = work / "tasks"
        tasks.mkdir()
        (tasks / "gsm8k_local.yaml").write_text(TASK.format(data=(root / "gsm8k" / "test.jsonl").resolve()))
        with SimulatorProcess(profile=work / "vendors.yaml", seed=11) as sim:
            url = sim.urls["peer"]
            lm_wall, lm = run_lm_eval(exe, url, tasks, work / "lm-out", args.items, args.concurrency)
            as_wall, ours = run_assay(url, args.items, args.concurrency, work / "home")
    common = sorted(set(lm) & set(ours))
    agree = sum(lm[i] == ours[i] for i in common)
    acc_lm = sum(lm[i] for i in common) / len(common)
    acc_ours = sum(ours[i] for i in common) / len(common)
    print(f"items scored by both: {len(common)} of {args.items}")
    print(f"accuracy: lm-eval {acc_lm:.4f}  assay {acc_ours:.4f}  (per-item agreement {agree}/{len(common)})")
    print(f"wall time, process start to results: lm-eval {lm_wall:.1f} s, assay {as_wall:.1f} s")
    print(
        f"items/s: lm-eval {len(lm) / lm_wall:.0f}, assay {len(ours) / as_wall:.0f} -> ratio {lm_wall / as_wall:.1f}x"
    )


if __name__ == "__main__":
    main()
