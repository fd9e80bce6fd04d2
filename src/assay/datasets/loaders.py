"""Dataset loaders: GSM8K, MMLU (original layout), MMLU-Redux, and user golden sets (JSONL/CSV).

Each built-in dataset knows its public home. A local copy is used when a data
folder (`--data-dir`, else `$ASSAY_DATA_DIR`) is laid out like the public
datasets (`gsm8k/test.jsonl`, `mmlu-redux/mmlu_*.csv`, `mmlu/test/*_test.csv`);
otherwise files are downloaded once into `$ASSAY_HOME/datasets/` and read from
there after. Errors name the file and line.
"""

from __future__ import annotations

import ast
import csv
import io
import os
import random
import re
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from assay.datasets.items import LETTERS, EvalItem
from assay.errors import AssayError, ConfigError

__all__ = ["BUILTIN", "Dataset", "data_dir", "load_items", "read_jsonl", "select"]

GSM8K_URL = "https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data/test.jsonl"
MMLU_REDUX_URL = "https://raw.githubusercontent.com/aryopg/mmlu-redux/main/mmlu_redux/mmlu_{subject}.csv"
# MMLU's 57 subjects, one MMLU-Redux file each.
MMLU_SUBJECTS = (
    "abstract_algebra",
    "anatomy",
    "astronomy",
    "business_ethics",
    "clinical_knowledge",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_mathematics",
    "college_medicine",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "econometrics",
    "electrical_engineering",
    "elementary_mathematics",
    "formal_logic",
    "global_facts",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_european_history",
    "high_school_geography",
    "high_school_government_and_politics",
    "high_school_macroeconomics",
    "high_school_mathematics",
    "high_school_microeconomics",
    "high_school_physics",
    "high_school_psychology",
    "high_school_statistics",
    "high_school_us_history",
    "high_school_world_history",
    "human_aging",
    "human_sexuality",
    "international_law",
    "jurisprudence",
    "logical_fallacies",
    "machine_learning",
    "management",
    "marketing",
    "medical_genetics",
    "miscellaneous",
    "moral_disputes",
    "moral_scenarios",
    "nutrition",
    "philosophy",
    "prehistory",
    "professional_accounting",
    "professional_law",
    "professional_medicine",
    "professional_psychology",
    "public_relations",
    "security_studies",
    "sociology",
    "us_foreign_policy",
    "virology",
    "world_religions",
)
_GSM8K_ANSWER = re.compile(r"####\s*(.+?)\s*$", re.S)


def data_dir(explicit: Path | None = None) -> Path | None:
    """Where local dataset copies live: the explicit folder, else $ASSAY_DATA_DIR, else none."""
    if explicit is not None:
        return explicit
    env = os.environ.get("ASSAY_DATA_DIR")
    return Path(env) if env else None


def _fetch(url: str, dest: Path, timeout_s: float = 60.0) -> Path:
    """Download once into the cache (atomically); later loads read the cached file."""
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # https only: our own constants
            body = resp.read()
    except (urllib.error.URLError, TimeoutError) as e:
        raise AssayError(
            f"cannot download {url}: {getattr(e, 'reason', e)}; set ASSAY_DATA_DIR (or --data-dir) to a folder "
            "with a local copy (docs/EVAL.md says how it is laid out)"
        ) from None
    fd, tmp = tempfile.mkstemp(dir=dest.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(body)
    os.replace(tmp, dest)
    return dest


def _gsm8k_answer(solution: str) -> str:
    m = _GSM8K_ANSWER.search(solution)
    return m.group(1).replace(",", "").strip() if m else solution.strip()


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line; a bad line is an error that names it."""
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise ConfigError(f"{path}:{n}: not valid JSON ({e})") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{n}: expected a JSON object per line, got {type(row).__name__}")
            yield n, row


def load_gsm8k(root: Path | None, cache: Path) -> list[EvalItem]:
    path = root / "gsm8k" / "test.jsonl" if root else _fetch(GSM8K_URL, cache / "gsm8k" / "test.jsonl")
    if not path.is_file():
        raise ConfigError(f"{path}: GSM8K not found in the data folder (expected gsm8k/test.jsonl)")
    items = []
    for n, row in read_jsonl(path):
        if not isinstance(row.get("question"), str) or not isinstance(row.get("answer"), str):
            raise ConfigError(f"{path}:{n}: expected string fields `question` and `answer`")
        ans = row["answer"]
        items.append(EvalItem(f"gsm8k-{n - 1:04d}", "gsm8k", row["question"], _gsm8k_answer(ans), solution=ans))
    return items


def load_mmlu_redux(root: Path | None, cache: Path, include_flagged: bool = False) -> list[EvalItem]:
    """MMLU-Redux: `error_type` flags bad items; only `OK` ones are kept unless asked."""
    if root is not None:
        folder = root / "mmlu-redux"
        files = sorted(folder.glob("mmlu_*.csv")) if folder.is_dir() else []
        if not files:
            raise ConfigError(f"{folder}: no mmlu_*.csv files (the MMLU-Redux layout: mmlu-redux/mmlu_<subject>.csv)")
    else:  # from the public repository, once, into the cache
        folder = cache / "mmlu-redux"
        files = [_fetch(MMLU_REDUX_URL.format(subject=s), folder / f"mmlu_{s}.csv") for s in MMLU_SUBJECTS]
    items = []
    for path in files:
        subject = path.stem.removeprefix("mmlu_")
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("mac_roman")  # one upstream file (moral_scenarios) was saved as Mac Roman
        header = text.split("\n", 1)[0]
        # The upstream files mix `;` and `,` as separators; the header says which.
        sep = ";" if header.count(";") > header.count(",") else ","
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=sep)
        for n, row in enumerate(reader, 2):
            try:
                choices = tuple(str(c) for c in ast.literal_eval(row["choices"]))
                answer = int(row["answer"])
            except (KeyError, ValueError, SyntaxError, TypeError) as e:
                raise ConfigError(f"{path}:{n}: expected `choices` as a list and `answer` as 0-3 ({e})") from None
            # Upstream spells the labels many ways ("OK", "ok", "Wrong Groundtruth", "wrong_groundtruth").
            flag = (row.get("error_type") or "ok").strip().lower().replace(" ", "_")
            if flag != "ok" and not include_flagged:
                continue
            items.append(
                EvalItem(
                    f"mmlu-{subject}-{n - 2:03d}",
                    "mmlu-redux",
                    row["question"],
                    LETTERS[answer],
                    choices,
                    tags=(subject,) if flag == "ok" else (subject, f"flagged:{flag}"),
                )
            )
    return items


def load_mmlu(root: Path | None, cache: Path) -> list[EvalItem]:
    """The original MMLU CSV layout: `mmlu/test/<subject>_test.csv`, no header, question, A-D, answer letter."""
    folder = (root or cache) / "mmlu" / "test"
    files = sorted(folder.glob("*_test.csv")) if folder.is_dir() else []
    if not files:
        raise ConfigError(f"{folder}: no *_test.csv files (the original MMLU layout)")
    items = []
    for path in files:
        subject = path.stem.removesuffix("_test")
        with path.open(newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.reader(f), 1):
                if len(row) != 6 or row[5].strip() not in "ABCD":
                    raise ConfigError(f"{path}:{n}: expected question, four choices and an answer letter")
                items.append(
                    EvalItem(
                        f"mmlu-{subject}-{n - 1:03d}", "mmlu", row[0], row[5].strip(), tuple(row[1:5]), tags=(subject,)
                    )
                )
    return items


def _tags(v: Any) -> tuple[str, ...]:
    if v is None or v == "":
        return ()
    if isinstance(v, str):
        return tuple(t.strip() for t in v.replace(",", ";").split(";") if t.strip())
    if isinstance(v, list):
        return tuple(str(t) for t in v)
    raise ValueError("tags must be a list or a ;-separated string")


def golden_item(row: dict[str, Any], where: str, dataset: str, index: int) -> EvalItem:
    """One golden-set row: `input` (or chat `messages`), `expected`, optional id, tags, context, choices, metadata."""
    expected = row.get("expected")
    if expected is None:
        raise ConfigError(f"{where}: missing `expected` (the reference answer)")
    messages: tuple[tuple[str, str], ...] = ()
    if "messages" in row:
        msgs = row["messages"]
        if not isinstance(msgs, list) or not all(isinstance(m, dict) and "role" in m and "content" in m for m in msgs):
            raise ConfigError(f"{where}: `messages` must be a list of {{role, content}} objects")
        messages = tuple((str(m["role"]), str(m["content"])) for m in msgs)
        question = messages[-1][1]
    elif isinstance(row.get("input"), str):
        question = row["input"]
    else:
        raise ConfigError(f"{where}: each item needs `input` (text) or `messages` (chat)")
    try:
        tags = _tags(row.get("tags"))
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    choices = row.get("choices") or ()
    known = {"id", "input", "messages", "expected", "tags", "context", "choices", "metadata"}
    meta = dict(row.get("metadata") or {}) | {k: v for k, v in row.items() if k not in known}
    return EvalItem(
        str(row.get("id") or f"{dataset}-{index:04d}"),
        dataset,
        question,
        str(expected),
        tuple(str(c) for c in choices),
        messages,
        tags,
        row.get("context"),
        metadata=meta,
        where=where,
    )


def load_golden(path: Path, dataset: str | None = None) -> list[EvalItem]:
    """A user golden set: JSONL (one object a line) or CSV (header row; `tags` ;-separated)."""
    name = dataset or path.stem
    if not path.is_file():
        raise ConfigError(f"{path}: no such golden-set file")
    items: list[EvalItem] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.DictReader(f), 2):
                items.append(golden_item(dict(row), f"{path}:{n}", name, len(items)))
    else:
        for n, row in read_jsonl(path):
            items.append(golden_item(row, f"{path}:{n}", name, len(items)))
    if not items:
        raise ConfigError(f"{path}: the golden set is empty")
    counts = Counter(i.id for i in items)
    dupes = sorted(i for i, n in counts.items() if n > 1)
    if dupes:
        raise ConfigError(f"{path}: item ids must be unique; repeated: {', '.join(dupes[:5])}")
    return items


def load_demo_qa() -> list[EvalItem]:
    """The small golden set bundled with assay for `make demo` (our own items, tagged)."""
    path = Path(str(resources.files("assay.datasets").joinpath("demo_qa.jsonl")))
    return load_golden(path, "demo-qa")


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    load: Callable[[Path | None, Path], list[EvalItem]]


BUILTIN: dict[str, Dataset] = {
    "gsm8k": Dataset("gsm8k", GSM8K_URL, load_gsm8k),
    "mmlu-redux": Dataset("mmlu-redux", MMLU_REDUX_URL.format(subject="SUBJECT"), load_mmlu_redux),
    "mmlu": Dataset("mmlu", "https://people.eecs.berkeley.edu/~hendrycks/data.tar", load_mmlu),
    "demo-qa": Dataset("demo-qa", "bundled with assay", lambda root, cache: load_demo_qa()),
}


def load_items(name: str, root: Path | None, cache: Path, include_flagged: bool = False) -> list[EvalItem]:
    """A built-in dataset by name, or a golden-set file by path (`include_flagged`: MMLU-Redux's bad items too)."""
    if name == "mmlu-redux":
        return load_mmlu_redux(root, cache, include_flagged)
    if name in BUILTIN:
        return BUILTIN[name].load(root, cache)
    path = Path(name)
    if path.suffix.lower() in (".jsonl", ".json", ".csv"):
        return load_golden(path)
    raise ConfigError(f"unknown dataset {name!r}; built in: {', '.join(BUILTIN)}; or a .jsonl/.csv golden set")


def select(items: list[EvalItem], limit: int | None = None, sample: int | None = None, seed: int = 0) -> list[EvalItem]:
    """`limit`: the first N in dataset order; `sample`: a seeded random N (kept in dataset order)."""
    if sample is not None and sample < len(items):
        picked = sorted(random.Random(seed).sample(range(len(items)), sample))
        items = [items[i] for i in picked]
    if limit is not None:
        items = items[:limit]
    return items
