"""Build the refusal detector's labelled corpus from permissively licensed sources (docs/SAFETY.md).

    python scripts/refusal/build.py --jbb PATH [--out DIR]

Sources, each fetched from its public home (nothing here is a copy of them):
- PyRIT 1.1.0 scorer evals (MIT; the pyrit wheel on PyPI): human-labelled refusal sets,
  the objective-achieved sets (score 1 = complied) and the harm sets' extremes;
- UncensorBench 0.3.7 (MIT; the wheel on PyPI): a refused and a complied reply per prompt;
- JailbreakBench artifacts (MIT; github.com/JailbreakBench/artifacts, a clone or a bare repo
  given by --jbb): replies of GPT-3.5, GPT-4, Llama-2-7b-chat and Vicuna-13b to attacks;
- assay's own examples (src/assay/datasets/refusal_train.jsonl) and synthetic replies written
  for this project to XSTest's *prompts* (scripts/refusal/synthetic.jsonl; the prompts are read
  from the data folder, XSTest's model completions are never used).

Where a source's label is not a refusal label (a jailbreak judge's "not jailbroken", PyRIT's
"objective not achieved", a harm score of 0), the reply was read and labelled for this project
by annotation agents (language models reading each reply; scripts/refusal/labels.jsonl, by
reply id, with XSTest's definitions of full compliance, full refusal and partial refusal);
those labels win. The corpus holds real harmful text: it is
written to a cache folder, never into the repository.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WHEELS = {"pyrit": "pyrit==1.1.0", "uncensorbench": "uncensorbench==0.3.7"}


def reply_id(text: str) -> str:
    return hashlib.sha1(text.strip().encode()).hexdigest()[:12]


def wheel(name: str, cache: Path) -> zipfile.ZipFile:
    """The source's wheel from PyPI (downloaded once into the cache, with no dependencies)."""
    found = sorted(cache.glob(f"{name}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), WHEELS[name]],
                       check=True)  # fmt: skip
        found = sorted(cache.glob(f"{name}-*.whl"))
    return zipfile.ZipFile(found[-1])


def _csv(z: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    text = z.read(name).decode("utf-8")
    return list(csv.DictReader(io.StringIO("".join(ln for ln in text.splitlines(True) if not ln.startswith("#")))))


def jbb_rows(path: Path) -> list[dict[str, object]]:
    """Every (model, reply) of the JailbreakBench attack artifacts, test artifacts left out."""
    bare = (path / "HEAD").is_file() and not (path / ".git").exists()
    git = ["git", "--git-dir", str(path)] if bare else ["git", "-C", str(path)]
    names = subprocess.run([*git, "ls-tree", "-r", "--name-only", "HEAD"], capture_output=True, text=True,
                           check=True).stdout.split()  # fmt: skip
    out = []
    for name in names:
        parts = name.split("/")
        if not name.endswith(".json") or len(parts) != 4 or parts[0] != "attack-artifacts" or "test-artifact" in name:
            continue
        doc = json.loads(subprocess.run([*git, "show", f"HEAD:{name}"], capture_output=True, text=True,
                                        check=True).stdout)  # fmt: skip
        for j in doc.get("jailbreaks", []):
            if j.get("response"):
                out.append(
                    {"model": parts[3][:-5], "goal": j["goal"], "text": j["response"], "jb": bool(j["jailbroken"])}
                )
    return out


def xstest_prompts() -> dict[int, str]:
    for root in filter(None, [os.environ.get("ASSAY_DATA_DIR"), str(ROOT.parent / "shared" / "datasets")]):
        f = Path(root) / "xstest" / "xstest_prompts.csv"
        if f.is_file():
            return {int(r["id"]): r["prompt"] for r in csv.DictReader(f.open(encoding="utf-8"))}
    raise SystemExit("error: xstest/xstest_prompts.csv not found under $ASSAY_DATA_DIR or ../shared/datasets")


def build(jbb: Path, cache: Path) -> list[dict[str, object]]:
    labels = {r["id"]: r for r in map(json.loads, (HERE / "labels.jsonl").read_text().splitlines())}
    rows: dict[str, dict[str, object]] = {}

    def add(source: str, fold: str, model: str | None, prompt: str, text: str, weak: str | None, human: bool) -> None:
        text = (text or "").strip()
        rid = reply_id(text)
        if not text or rid in rows:
            return
        mine = labels.get(rid)
        label = mine["label"] if mine and not human else weak
        if label is None:
            return  # an ambiguous source label nobody has read
        rows[rid] = {"id": rid, "source": source, "fold": fold, "model": model, "prompt": prompt, "text": text,
                     "label": label, "unsure": bool(mine and mine.get("unsure"))}  # fmt: skip

    z = wheel("pyrit", cache)
    base = "pyrit/datasets/scorer_evals/"
    for f in ("refusal_scorer/refusal.csv", "refusal_scorer/refusal_extra.csv", "sample/mini_refusal.csv"):
        for r in _csv(z, base + f):  # human labels, 1 = refused (off-topic answers count as refusals)
            add("pyrit-refusal", "pyrit", None, r["objective"], r["assistant_response"],
                "refused" if r["human_score"].strip() == "1" else "complied", True)  # fmt: skip
    names = sorted(z.namelist())
    for f in (n for n in names if n.startswith(base + "objective/") and n.endswith(".csv")):
        for r in _csv(z, f):
            add("pyrit-objective", "pyrit", None, r["objective"], r["assistant_response"],
                "complied" if r["human_score"].strip() == "1" else None, False)  # fmt: skip
    for f in (n for n in names if n.startswith(base + "harm/") and n.endswith(".csv")):
        for r in _csv(z, f):
            scores = [float(v) for k, v in r.items() if k and k.startswith("human_score") and v not in (None, "")]
            if scores and min(scores) >= 0.75:
                add("pyrit-harm", "pyrit", None, r["objective"], r["assistant_response"], "complied", False)
            elif scores and max(scores) == 0:
                add("pyrit-harm", "pyrit", None, r["objective"], r["assistant_response"], None, False)
    doc = json.loads(wheel("uncensorbench", cache).read("uncensorbench/data/prompts.json"))
    for p in doc["prompts"]:
        add("uncensorbench", "uncensorbench", None, p["prompt"], p["censored_response"], "refused", False)
        add("uncensorbench", "uncensorbench", None, p["prompt"], p["uncensored_response"], "complied", False)
    for r in jbb_rows(jbb):
        model = str(r["model"])
        add("jbb", "jbb-" + model.split("-")[0], model, str(r["goal"]), str(r["text"]),
            "complied" if r["jb"] else None, False)  # fmt: skip
    for line in (ROOT / "src/assay/datasets/refusal_train.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            add("assay", "assay", None, r.get("prompt", ""), r["response"], r["label"], True)
    prompts = xstest_prompts()
    for line in (HERE / "synthetic.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            add("synthetic", "synthetic", r["style"], prompts[int(r["prompt_id"])], r["reply"], r["label"], True)
    return list(rows.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jbb", type=Path, required=True, help="a clone (or bare repo) of JailbreakBench/artifacts")
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache" / "assay" / "refusal")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    rows = build(a.jbb, a.out)
    with tempfile.NamedTemporaryFile("w", dir=a.out, delete=False, suffix=".tmp") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(f.name, a.out / "corpus.jsonl")
    by: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (str(r["fold"]), "complied" if r["label"] == "complied" else "refusal")
        by[key] = by.get(key, 0) + 1
    print(f"{len(rows)} labelled replies -> {a.out / 'corpus.jsonl'}")
    for (fold, lab), n in sorted(by.items()):
        print(f"  {fold:14s} {lab:9s} {n}")


if __name__ == "__main__":
    main()
