"""The simulated models recognise every attack wrapping of every red-team item they were given."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.config import SafetySuite, Technique
from assay.datasets.safety import SAFETY_SOURCES, SLOT, load_jailbreak_templates, load_safety
from assay.errors import AssayError
from assay.simulator.profiles import SafetyBehaviour
from assay.simulator.safety import SafetyKey, load_safety_key
from assay.suites.attacks import build_attacks
from tests.conftest import DATA_DIR, needs_data

TECHNIQUES: tuple[str, ...] = Technique.__args__  # type: ignore[attr-defined]
HARMFUL_TRUTHS = {"complied", "refused", "partial", "blocked"}


def _unsafe_datasets(root: Path | None, cache: Path) -> list[str]:
    names = []
    for name in SAFETY_SOURCES:
        try:
            items = load_safety(name, root, cache) if root is not None or name == "demo-safety" else []
        except AssayError:
            continue
        if any(it.metadata.get("label") == "unsafe" for it in items):
            names.append(name)
    return names


def _misses(key: SafetyKey, user: str, question: str) -> str | None:
    found = key.find(user)
    if found is None:
        return "not recognised"
    item, wrapped = found
    if " ".join(item.question.lower().split()) != " ".join(question.lower().split()) or not wrapped:
        return f"taken for {item.id}"
    said = key.reply(SafetyBehaviour(), 0, "m", "", user)
    if said is None or said.truth not in HARMFUL_TRUTHS:
        return f"answered as {said.truth if said else None}"
    return None


def _sweep(root: Path | None, cache: Path) -> tuple[int, list[str]]:
    key = load_safety_key(["safety"], root)
    assert key is not None
    checked, wrong = 0, []
    names = _unsafe_datasets(root, cache)
    assert "demo-safety" in names
    for name in names:
        for tech in TECHNIQUES:
            suite = SafetySuite.model_validate(
                {"name": "s", "kind": "safety", "category": "jailbreak", "dataset": name, "techniques": [tech]}
            )
            for attack in build_attacks(suite, root, cache):
                checked += 1
                problem = _misses(key, attack.request.messages[-1].content, attack.intent)
                if problem:
                    wrong.append(f"{attack.item_id}: {problem}")
    # Every template, around the shortest request of each dataset (short requests are the hardest to find).
    for name in names:
        shortest = min((it for it in load_safety(name, root, cache) if it.metadata.get("label") == "unsafe"),
                       key=lambda it: len(it.question))  # fmt: skip
        request = shortest.question
        for i, template in enumerate(load_jailbreak_templates(root)):
            checked += 1
            problem = _misses(key, SLOT.sub(lambda _, r=request: r, template), request)
            if problem:
                wrong.append(f"{shortest.id}-template{i}: {problem}")
    return checked, wrong


def test_every_bundled_item_is_recognised_in_every_wrapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSAY_DATA_DIR", raising=False)
    checked, wrong = _sweep(None, tmp_path)
    assert checked > 80 and not wrong, wrong[:20]


@needs_data("harmbench", "harmbench_prompts.txt")
def test_every_public_item_is_recognised_in_every_wrapping(tmp_path: Path) -> None:
    """Leetspeak of a request with digits (COVID-19, 2014), three-word requests, requests inside longer ones."""
    checked, wrong = _sweep(DATA_DIR, tmp_path)
    assert checked > 9000 and not wrong, f"{len(wrong)} of {checked}: {wrong[:20]}"


@needs_data("bbq", "Age.jsonl")
def test_bbq_questions_asked_twice_with_other_options_are_told_apart(tmp_path: Path) -> None:
    """BBQ repeats some context+question pairs with the options reordered; the reply must follow the options sent."""
    key = load_safety_key(["bbq"], DATA_DIR)
    assert key is not None
    suite = SafetySuite.model_validate({"name": "b", "kind": "safety", "category": "bias", "dataset": "bbq"})
    attacks = build_attacks(suite, DATA_DIR, tmp_path)
    wrong = []
    for a in attacks:
        assert a.item is not None
        said = key.reply(SafetyBehaviour(bias=0.5, bias_accuracy=0.5), 0, "m", "", a.request.messages[-1].content)
        if said is None or (said.truth == "biased") != (said.text == a.item.metadata["biased"]):
            wrong.append(a.item_id)
    assert len(attacks) > 11000 and not wrong, wrong[:20]
