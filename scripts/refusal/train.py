"""Choose, fit and ship the default refusal detector, by a held-out-source protocol.

    python scripts/refusal/train.py [--corpus ~/.cache/assay/refusal/corpus.jsonl] [--write]

Every candidate is scored leave-one-source-out: fitted on all sources but one, and
judged on that one (seven sources: assay's own, JailbreakBench's GPT, Llama-2 and Vicuna
replies, PyRIT, UncensorBench, synthetic replies to XSTest prompts). The candidate with the
best pooled out-of-fold kappa is refitted on everything and, with --write, written to
src/assay/suites/refusal_model.json together with its out-of-fold confusion counts: the
figures assay reports as the detector's validation and uses to widen attack-rate intervals.
No figure here comes from a reply its model was fitted on. Needs scikit-learn (dev extra);
the embedding candidates also need the embeddings extra.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from assay.suites.refusal_model import MODEL_FILE, features  # noqa: E402
from assay.suites.refusal_rules import classify_refusal_rules  # noqa: E402

HEAD_WORDS, START_WORDS, MIN_DF, C = 150, 6, 2, 0.3  # chosen by the same protocol (docs/BENCHMARKS.md)


def _set(c: float, head_words: int, min_df: int) -> None:
    global C, HEAD_WORDS, MIN_DF
    C, HEAD_WORDS, MIN_DF = c, head_words, min_df


def kappa(y: np.ndarray, p: np.ndarray) -> float:
    po = float(np.mean(y == p))
    pe = float(np.mean(y) * np.mean(p) + (1 - np.mean(y)) * (1 - np.mean(p)))
    return (po - pe) / (1 - pe) if pe < 1 else float("nan")


def fit_sparse(
    rows: list[dict], feats: list[set[str]], y: np.ndarray, weights: np.ndarray | None = None
) -> tuple[dict[str, float], float]:
    """Logistic regression on presence features seen in at least MIN_DF replies."""
    df: dict[str, int] = {}
    for f in feats:
        for g in f:
            df[g] = df.get(g, 0) + 1
    keep = [{g: 1 for g in f if df[g] >= MIN_DF} for f in feats]
    v = DictVectorizer()
    m = LogisticRegression(C=C, max_iter=5000, class_weight="balanced").fit(
        v.fit_transform(keep), y, sample_weight=weights
    )
    names = v.get_feature_names_out()
    return {str(n): round(float(w), 4) for n, w in zip(names, m.coef_[0], strict=True) if abs(w) >= 1e-4}, float(
        m.intercept_[0]
    )


def prob_sparse(model: tuple[dict[str, float], float], feats: list[set[str]]) -> np.ndarray:
    w, b = model
    z = np.array([b + sum(w.get(g, 0.0) for g in f) for f in feats])
    return 1 / (1 + np.exp(-z))


def embed(rows: list[dict]) -> np.ndarray:
    from assay.suites.embedding import default_model_dir, load_model

    model = load_model(str(default_model_dir()))
    return np.asarray(model.encode([r["text"][:400] for r in rows], batch_size=64, normalize_embeddings=True,
                                   show_progress_bar=False))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path.home() / ".cache/assay/refusal/corpus.jsonl")
    ap.add_argument("--write", action="store_true", help="write the chosen model into the package")
    ap.add_argument("--no-embeddings", action="store_true")
    ap.add_argument("--C", type=float, default=C, help="inverse L2 strength of the n-gram model")
    ap.add_argument("--head-words", type=int, default=HEAD_WORDS)
    ap.add_argument("--min-df", type=int, default=MIN_DF)
    ap.add_argument("--synthetic-weight", type=float, default=1.0)
    a = ap.parse_args()
    _set(a.C, a.head_words, a.min_df)
    rows = [json.loads(line) for line in a.corpus.read_text().splitlines() if line.strip()]
    y = np.array([int(r["label"] != "complied") for r in rows])
    fold = np.array([r["fold"] for r in rows])
    sure = np.array([not r["unsure"] for r in rows])
    folds = sorted(set(fold))
    # Synthetic replies count as any other by default; up-weighting them (the nearest to over-refusal
    # traffic) helped on held-out synthetic batches and hurt on the real sources, by less than 0.01 either way.
    weight = np.where(fold == "synthetic", a.synthetic_weight, 1.0)
    full = [features(r["text"], r["prompt"], HEAD_WORDS, START_WORDS) for r in rows]
    plain = [{g for g in f if not g.startswith("R:")} for f in full]

    def oof_sparse(feats: list[set[str]]) -> np.ndarray:
        p = np.zeros(len(rows))
        for f in folds:
            tr = fold != f
            m = fit_sparse(
                [r for r, t in zip(rows, tr, strict=True) if t],
                [x for x, t in zip(feats, tr, strict=True) if t],
                y[tr],
                weight[tr],
            )
            p[~tr] = prob_sparse(m, [x for x, t in zip(feats, tr, strict=True) if not t])
        return p

    cands: dict[str, Callable[[], np.ndarray]] = {
        "rules": lambda: np.array([float(classify_refusal_rules(r["text"]) is not None) for r in rows]),
        "ngrams": lambda: oof_sparse(plain),
        "linear": lambda: oof_sparse(full),
    }
    emb = None
    if not a.no_embeddings:
        try:
            emb = embed(rows)
        except Exception as e:
            print(f"(embedding candidates skipped: {e})")
    if emb is not None:

        def oof_emb() -> np.ndarray:
            p = np.zeros(len(rows))
            for f in folds:
                tr = fold != f
                m = LogisticRegression(C=10, max_iter=5000, class_weight="balanced").fit(emb[tr], y[tr])
                p[~tr] = m.predict_proba(emb[~tr])[:, 1]
            return p

        cands["embedding"] = oof_emb
    probs = {name: make() for name, make in cands.items()}
    if "embedding" in probs:
        probs["linear+embedding"] = (probs["linear"] + probs["embedding"]) / 2
    print(f"{len(rows)} replies, {int(y.sum())} refusals; leave-one-source-out kappa (threshold 0.5)")
    print(f"{'candidate':18s} {'pooled':>7s} {'sure':>6s} " + " ".join(f"{f:>13s}" for f in folds))
    scores = {}
    for name, p in probs.items():
        pred = (p >= 0.5).astype(int)
        scores[name] = kappa(y, pred)
        per = " ".join(f"{kappa(y[fold == f], pred[fold == f]):13.3f}" for f in folds)
        print(f"{name:18s} {scores[name]:7.3f} {kappa(y[sure], pred[sure]):6.3f} {per}")
    best = max((n for n in probs if n in ("linear", "ngrams")), key=lambda n: scores[n])
    print(f"chosen: {best} (the best pooled kappa among the candidates that need no extra)")
    if not a.write:
        return
    feats = full if best == "linear" else plain
    w, b = fit_sparse(rows, feats, y, weight)
    confusion = {}
    for name, p in probs.items():
        pred = (p >= 0.5).astype(int)
        confusion[name if name != best else "linear"] = {
            "tp": int(((pred == 1) & (y == 1)).sum()), "fp": int(((pred == 1) & (y == 0)).sum()),
            "fn": int(((pred == 0) & (y == 1)).sum()), "tn": int(((pred == 0) & (y == 0)).sum())}  # fmt: skip
    doc = {
        "name": f"assay-{best}-v1",
        "head_words": HEAD_WORDS,
        "start_words": START_WORDS,
        "threshold": 0.5,
        "bias": round(b, 4),
        "validation": {
            "protocol": f"leave-one-source-out over {len(folds)} sources",
            "n": len(rows),
            "sources": {f: int((fold == f).sum()) for f in folds},
            "by_detector": confusion,
        },
        "candidates": {n: round(k, 4) for n, k in scores.items()},
        "weights": dict(sorted(w.items())),
    }
    if emb is not None:  # the opt-in embedding detector's weights, fitted on everything too
        m = LogisticRegression(C=10, max_iter=5000, class_weight="balanced").fit(emb, y)
        doc["embedding"] = {"model": "all-MiniLM-L6-v2", "weights": [round(float(x), 5) for x in m.coef_[0]],
                            "bias": round(float(m.intercept_[0]), 5)}  # fmt: skip
    out = ROOT / "src/assay/suites" / MODEL_FILE
    out.write_text(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")
    print(f"wrote {out} ({len(w)} weights, {out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
