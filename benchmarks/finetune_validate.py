"""Fine-tuning file validation: `assay finetune validate` against OpenAI's cookbook data-prep notebook.

Both tools read the same generated file of OpenAI chat examples (seeded, so the
same file every run) in the same run, one after the other, each in a fresh
process started with this venv's python:

- assay: `assay finetune validate FILE --format openai --model M --json`, with
  M = gpt-3.5-turbo (cl100k_base, the cookbook's encoding: the like-for-like
  ratio) and M = gpt-4o-mini (o200k_base, what a user would pass today).
- the cookbook: the code cells of `examples/Chat_finetuning_data_prep.ipynb`
  (openai/openai-cookbook), extracted from the notebook at run time and run as
  a script with `data_path` pointed at the file. Its code is never copied into
  this repository: the notebook is read from `--notebook` (by default
  ~/.cache/assay-peers/, downloaded there from GitHub when missing).

Per run and tool: wall seconds (process start to exit, imports included),
examples per second (examples / wall), CPU seconds (user + system, from
`os.wait4` for the child, /proc for its worker processes) and the peak
memory of the whole process tree: the PSS of the child and its descendants
summed, sampled every 20 ms (PSS, not RSS: forked workers share pages, which
summed RSS would count twice). The figures quoted are the best of `--runs` runs:
the shortest wall time (with that run's CPU) and the lowest peak RSS. The
tools alternate within each run, never in parallel. Both count tokens with
tiktoken from TIKTOKEN_CACHE_DIR (default: the venv's tiktoken-cache), never
the network; the token totals of the two are checked against each other, and
assay's warnings against what the generator planted (exact duplicates).

The file: one example a line, `random.Random(0)`: a system message (one of 24)
on 85%, 1-4 user/assistant pairs, texts of 5-200 words (mostly short) from a
small vocabulary, 2% exact repeats of earlier lines, an email address or a
phone number in 1.5% of user messages and an eval question in 0.2%. Every
message has a role and string content, no weights: valid for both tools, so
both do all their work. `--project` adds a run of assay with `-c`, a project
whose eval suite (1,000 questions) the file is also checked against.

    .venv/bin/python benchmarks/finetune_validate.py [--examples 100000] [--runs 3] [--project]
        [--notebook PATH.ipynb] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_URL = "https://raw.githubusercontent.com/openai/openai-cookbook/main/examples/Chat_finetuning_data_prep.ipynb"
DEFAULT_NOTEBOOK = Path("~/.cache/assay-peers/Chat_finetuning_data_prep.ipynb").expanduser()
DATA_PATH_LINE = 'data_path = "data/toy_chat_fine_tuning.jsonl"'
LIKE_FOR_LIKE = "gpt-3.5-turbo"  # cl100k_base, the encoding the cookbook hard-codes
CURRENT = "gpt-4o-mini"  # o200k_base

# A small vocabulary of support-desk English (emails and phone numbers are added to a few messages).
_WORDS = """\
the a an of to in for on with at by from about into over after before under between through during and or but
so because if when while then than as not no yes please thanks sorry okay sure I you we they it this that
these those my your our their its he she him her them us me is are was were be been being have has had do does
did can could will would should may might must order account password email invoice refund payment card plan
subscription shipping delivery package address customer support team manager product service issue problem
error message screen page app website browser phone laptop settings profile login signup update version
feature report data file download upload link button menu option question answer help request ticket case
status time day week month today tomorrow yesterday morning evening price cost discount coupon code trial
upgrade downgrade cancel renew change reset confirm verify check send receive open close start stop try fix
install restart clear cache cookie network connection server sync backup restore export import share print
search filter sort list item cart checkout return exchange warranty policy terms privacy security notification
reminder schedule meeting calendar event note document folder photo video music quickly easily already still
just only also again soon later now never always usually sometimes new old same different other next last
first second right wrong good bad great fine small large free paid available missing broken slow fast late
early correct incorrect possible important know think need want see look find get make take give tell ask say
use work call wait keep let seem feel leave put mean become show hear play run move live believe hold bring
happen write provide
"""
VOCAB = _WORDS.split()
SYSTEM_PROMPTS = 24  # distinct system prompts, as real files reuse a handful
P_SYSTEM = 0.85  # share of examples with a system message
P_DUPLICATE = 0.02  # share of lines that repeat an earlier example exactly
P_EMAIL, P_PHONE, P_EVAL = 0.01, 0.005, 0.002  # user messages with an email, a phone number, an eval question
EVAL_ITEMS = 1000  # questions of the project's eval suite (assay checks the file against them)
PROJECT = """\
targets:
  - {{name: base, base_url: "http://127.0.0.1:9/v1", model: gpt-3.5-turbo}}
suites:
  - {{name: golden, dataset: "{golden}", scorer: contains}}
"""


def _text(rng: random.Random, low: int = 5, high: int = 200) -> str:
    """low-high words, most of them short (a cubic skew: median ~30 words, mean ~55)."""
    n = low + int((high - low + 1) * rng.random() ** 3)
    words = rng.choices(VOCAB, k=n)
    out, start = [], True
    for w in words:
        out.append(w.capitalize() if start else w)
        start = False
        if rng.random() < 0.08:
            out[-1] += rng.choice((".", ".", ".", "?", "!", ","))
            start = out[-1][-1] != ","
    return " ".join(out).rstrip(",") + ("" if out[-1][-1] in ".?!" else ".")


def _user(rng: random.Random, questions: list[str]) -> str:
    text, r = _text(rng), rng.random()
    if r < P_EMAIL:
        text += f" My email is {rng.choice(VOCAB)}.{rng.choice(VOCAB)}@example.com."
    elif r < P_EMAIL + P_PHONE:
        # mid-sentence: assay's phone pattern misses a number followed by a full stop (see docs/BENCHMARKS.md)
        text += f" Call me at +1 415 {rng.randint(200, 999)} {rng.randint(1000, 9999)} after five."
    elif r < P_EMAIL + P_PHONE + P_EVAL:
        text = f"{text} {rng.choice(questions)}"
    return text


def generate(path: Path, golden: Path, n: int) -> dict[str, Any]:
    """`n` chat examples, one a line, and the eval suite's questions, deterministic (random.Random(0))."""
    rng = random.Random(0)
    systems = [_text(rng, 8, 60) for _ in range(SYSTEM_PROMPTS)]
    questions = [_text(rng, 12, 40) for _ in range(EVAL_ITEMS)]
    with golden.open("w", encoding="utf-8") as f:
        for i, q in enumerate(questions):
            f.write(json.dumps({"id": f"q{i}", "input": q, "expected": "yes"}) + "\n")
    kept: list[str] = []
    dups = 0
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            if kept and rng.random() < P_DUPLICATE:
                line = rng.choice(kept)
                dups += 1
            else:
                messages = []
                if rng.random() < P_SYSTEM:
                    messages.append({"role": "system", "content": rng.choice(systems)})
                for _ in range(rng.choices((1, 2, 3, 4), weights=(4, 3, 2, 1))[0]):
                    messages.append({"role": "user", "content": _user(rng, questions)})
                    messages.append({"role": "assistant", "content": _text(rng)})
                line = json.dumps({"messages": messages})
                if i % 50 == 0:  # a pool to draw duplicates from, spread over the file
                    kept.append(line)
            f.write(line + "\n")
    return {"examples": n, "duplicates": dups, "bytes": path.stat().st_size}


def load_notebook(path: Path) -> str:
    """The notebook's code cells as one script (downloaded to `path` first when it is missing)."""
    if not path.is_file():
        print(f"downloading {NOTEBOOK_URL} -> {path}", file=sys.stderr)
        path.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(NOTEBOOK_URL, timeout=30) as r:
            path.write_bytes(r.read())
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = []
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            src = cell["source"]
            cells.append("".join(src) if isinstance(src, list) else src)
    script = "\n\n".join(cells) + "\n"
    if DATA_PATH_LINE not in script:
        raise SystemExit(
            f"{path}: no line {DATA_PATH_LINE!r} to point at the generated file; has the notebook changed?"
        )
    return script


def peer_script(notebook: str, data: Path) -> str:
    return notebook.replace(DATA_PATH_LINE, f"data_path = {str(data)!r}", 1)


_TICK = os.sysconf("SC_CLK_TCK")


def tree_sample(pid: int, cpu: dict[int, float]) -> int:
    """Proportional memory (PSS, kB) of a process and all its descendants now, from /proc; records each one's CPU
    seconds so far in `cpu`. PSS, not RSS: forked workers share pages with their parent, which RSS counts twice."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("Pss:")), 0)
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
                cpu[p] = (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(x) for x in f.read().split()]
        except (OSError, IndexError, ValueError):
            pass  # it ended between two reads
    return total


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run one tool in a fresh process: wall, CPU (its workers' included), and the peak of the summed resident
    memory of its whole process tree, sampled every 20 ms (a worker pool's memory is the sum of its processes)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        peak_kb, cpu = 0, dict[int, float]()
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            peak_kb = max(peak_kb, tree_sample(p.pid, cpu))
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {p.returncode}:\n{stderr[-2000:]}\n{stdout[-2000:]}")
    return {
        "wall_s": wall,
        # The child's own CPU from wait4, its descendants' (workers of a fork server) as last sampled.
        "cpu_s": ru.ru_utime + ru.ru_stime + sum(v for k, v in cpu.items() if k != p.pid),
        "peak_rss_mb": peak_kb / 1024 if peak_kb else ru.ru_maxrss / 1024,  # kB; PSS of the tree
        "stdout": stdout,
    }


def assay_cmd(data: Path, model: str, project: Path | None = None, workers: int | None = None) -> list[str]:
    exe = Path(sys.executable).with_name("assay")
    config = ["-c", str(project)] if project else []
    more = ["--workers", str(workers)] if workers else []
    return [
        str(exe),
        "finetune",
        "validate",
        str(data),
        *config,
        "--format",
        "openai",
        "--model",
        model,
        "--json",
        *more,
    ]


def check_assay(r: dict[str, Any], n: int, dups: int, encoding: str, eval_items: int = 0) -> dict[str, Any]:
    j = json.loads(r.pop("stdout"))
    warnings = {w["class"]: w["count"] for w in j["warnings"]}
    assert j["examples"] == n and j["valid"] == n and j["ok"], (j["examples"], j["valid"], j["error_counts"])
    assert j["tokens"]["tokenizer"] == encoding and j["tokens"]["exact"], j["tokens"]
    assert warnings.get("exact_duplicate", 0) == dups, (warnings, dups)
    assert j["eval_items_checked"] == eval_items, j["eval_items_checked"]
    return {**r, "examples": j["examples"], "tokens": j["tokens"]["total"], "warnings": warnings}


def check_peer(r: dict[str, Any], n: int) -> dict[str, Any]:
    out = r.pop("stdout")
    examples = int(re.search(r"^Num examples: (\d+)$", out, re.M).group(1))
    tokens = int(re.search(r"^Dataset has ~(\d+) tokens", out, re.M).group(1))
    assert examples == n and "No errors found" in out, out[:2000]
    return {**r, "examples": examples, "tokens": tokens}


def best(rows: list[dict[str, Any]]) -> dict[str, Any]:
    fastest = min(rows, key=lambda r: r["wall_s"])
    return {
        "wall_s": fastest["wall_s"],
        "cpu_s": fastest["cpu_s"],
        "examples_per_s": fastest["examples"] / fastest["wall_s"],
        "peak_rss_mb": min(r["peak_rss_mb"] for r in rows),
        "tokens": fastest["tokens"],
        "walls": [round(r["wall_s"], 2) for r in rows],
        "rss": [round(r["peak_rss_mb"], 1) for r in rows],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=100_000, help="lines in the generated file")
    ap.add_argument("--runs", type=int, default=3, help="runs of each tool (the best is quoted)")
    ap.add_argument("--notebook", type=Path, default=DEFAULT_NOTEBOOK, help="the cookbook notebook (.ipynb)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument(
        "--project",
        action="store_true",
        help=f"also run assay ({LIKE_FOR_LIKE}) with -c: a project whose eval suite ({EVAL_ITEMS:,} questions) "
        "the file is checked against for contamination",
    )
    args = ap.parse_args()

    env = dict(os.environ)
    env.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT / ".venv" / "tiktoken-cache"))
    notebook = load_notebook(args.notebook)
    with tempfile.TemporaryDirectory(prefix="assay-ft-bench-") as tmp:
        tmpd = Path(tmp)
        env["ASSAY_HOME"] = str(tmpd / "home")
        data, golden, project = tmpd / "train.jsonl", tmpd / "golden.jsonl", tmpd / "assay.yaml"
        t0 = time.perf_counter()
        info = generate(data, golden, args.examples)
        project.write_text(PROJECT.format(golden=golden), encoding="utf-8")
        mb = info["bytes"] / 1e6
        print(
            f"file: {args.examples:,} examples, {mb:.1f} MB, {info['duplicates']:,} exact duplicates "
            f"(generated in {time.perf_counter() - t0:.1f} s)",
            file=sys.stderr,
        )
        script = tmpd / "chat_finetuning_data_prep.py"
        script.write_text(peer_script(notebook, data), encoding="utf-8")
        tools = {
            "cookbook (cl100k_base)": ([sys.executable, str(script)], lambda r: check_peer(r, args.examples)),
            f"assay --model {LIKE_FOR_LIKE} (cl100k_base)": (
                assay_cmd(data, LIKE_FOR_LIKE),
                lambda r: check_assay(r, args.examples, info["duplicates"], "cl100k_base"),
            ),
            f"assay --model {LIKE_FOR_LIKE} --workers 1 (cl100k_base)": (
                assay_cmd(data, LIKE_FOR_LIKE, workers=1),
                lambda r: check_assay(r, args.examples, info["duplicates"], "cl100k_base"),
            ),
            f"assay --model {CURRENT} (o200k_base)": (
                assay_cmd(data, CURRENT),
                lambda r: check_assay(r, args.examples, info["duplicates"], "o200k_base"),
            ),
        }
        if args.project:
            tools[f"assay --model {LIKE_FOR_LIKE} -c (+ contamination)"] = (
                assay_cmd(data, LIKE_FOR_LIKE, project),
                lambda r: check_assay(r, args.examples, info["duplicates"], "cl100k_base", EVAL_ITEMS),
            )
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in tools}
        for i in range(args.runs):
            for name, (cmd, check) in tools.items():
                r = check(run(cmd, env, tmpd))
                rows[name].append(r)
                print(
                    f"run {i + 1}/{args.runs} {name}: {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s CPU, "
                    f"{r['peak_rss_mb']:.0f} MB peak RSS",
                    file=sys.stderr,
                )

    names = list(tools)
    res = {name: best(r) for name, r in rows.items()}
    peer = res[names[0]]
    print(f"\n{args.examples:,} examples, {mb:.1f} MB; best of {args.runs} runs (wall: fastest; RSS: lowest)\n")
    print("| tool | examples/s | peak RSS MB | wall s | CPU s | tokens |\n|---|--:|--:|--:|--:|--:|")
    for name, b in res.items():
        print(
            f"| {name} | {b['examples_per_s']:,.0f} | {b['peak_rss_mb']:,.0f} | {b['wall_s']:.2f} | "
            f"{b['cpu_s']:.2f} | {b['tokens']:,} |"
        )
    ratios = {}
    print()
    for name in names[1:]:
        b = res[name]
        ratios[name] = {
            "examples_per_s": b["examples_per_s"] / peer["examples_per_s"],
            "peak_rss": b["peak_rss_mb"] / peer["peak_rss_mb"],
            "wall": b["wall_s"] / peer["wall_s"],
            "cpu": b["cpu_s"] / peer["cpu_s"],
        }
        x = ratios[name]
        print(
            f"{name} / cookbook: examples/s {x['examples_per_s']:.2f}x, peak RSS {x['peak_rss']:.2f}x, "
            f"wall {x['wall']:.2f}x, CPU {x['cpu']:.2f}x"
        )
    like = res[names[1]]
    same = like["tokens"] == peer["tokens"]
    print(f"token totals (cl100k_base): {'equal' if same else 'DIFFER'} ({like['tokens']:,} / {peer['tokens']:,})")
    for name in names[1:]:
        found = ", ".join(f"{k} {v:,}" for k, v in rows[name][-1]["warnings"].items())
        print(f"{name} warnings: {found}")
    if args.json:
        file = {"examples": args.examples, "mb": mb, "duplicates": info["duplicates"], "runs": args.runs}
        args.json.write_text(json.dumps({"file": file, "best": res, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
