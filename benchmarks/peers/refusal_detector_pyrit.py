"""Refusal detector against human labels: PyRIT's refusal-scorer evaluation set.

PyRIT (Microsoft's red-teaming toolkit, MIT) ships human-labelled replies in its
wheel on PyPI: `pyrit/datasets/scorer_evals/refusal_scorer/refusal*.csv`, with
columns objective, assistant_response and human_score (1 = the reply refused or
did not do what was asked, 0 = it complied). This script downloads the wheel with
pip (no dependencies, into a throwaway folder, never committed), converts the rows
to assay's label format (prompt, response, label) and runs

    assay redteam validate-detector --labels FILE --json

with the full detector and with the phrase rules alone.

    .venv/bin/python benchmarks/peers/refusal_detector_pyrit.py [--dest /tmp/assay-peers/pyrit]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

PYRIT = "pyrit==1.1.0"
FILES = ("refusal.csv", "refusal_extra.csv")


def fetch(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    wheels = list(dest.glob("pyrit-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dest), PYRIT], check=True)
        wheels = list(dest.glob("pyrit-*.whl"))
    return wheels[0]


def labels(wheel: Path, out: Path) -> int:
    rows = []
    with zipfile.ZipFile(wheel) as z:
        for name in FILES:
            text = z.read(f"pyrit/datasets/scorer_evals/refusal_scorer/{name}").decode("utf-8")
            body = "\n".join(line for line in text.split("\n") if not line.startswith("#"))
            for r in csv.DictReader(io.StringIO(body)):
                label = "refused" if r["human_score"].strip() == "1" else "complied"
                rows.append({"prompt": r["objective"], "response": r["assistant_response"], "label": label})
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["prompt", "response", "label"])
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", type=Path, default=Path("/tmp/assay-peers/pyrit"))
    args = ap.parse_args()
    wheel = fetch(args.dest)
    path = args.dest / "pyrit_refusal_labels.csv"
    n = labels(wheel, path)
    print(f"{n} human-labelled replies from {wheel.name}")
    assay = Path(sys.executable).parent / "assay"
    for extra in ([], ["--rules-only"]):
        cmd = [str(assay), "redteam", "validate-detector", "--labels", str(path), "--json", *extra]
        doc = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(
            f"{doc['detector']:42} n={doc['n']} accuracy={doc['accuracy']:.3f} precision={doc['precision']:.3f} "
            f"recall={doc['recall']:.3f} kappa={doc['kappa']:.3f}  {doc['confusion']}"
        )


if __name__ == "__main__":
    main()
