"""Scorers on labelled examples; GSM8K extraction agrees with the dataset's own answer format."""

from __future__ import annotations

import pytest

from assay.datasets import EvalItem, load_items
from assay.suites.scorers import SCORERS, extract_choice, extract_number, hallucinated, rouge_l, token_f1
from tests.conftest import DATA_DIR, needs_data


def item(expected: str, **kw: object) -> EvalItem:
    return EvalItem("i", "t", kw.pop("question", "q?"), expected, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reply", "number"),
    [
        ("She makes 9 * 2 = $18 a day.\n#### 18", "18"),
        ("The answer is 1,250.", "1250"),
        ("First 3 then 4, so 7", "7"),
        ("It costs $2,500.50 in total.", "2500.50"),
        ("-3 degrees", "-3"),
        ("no digits here", None),
    ],
)
def test_number_extraction(reply: str, number: str | None) -> None:
    assert extract_number(reply) == number


@needs_data("gsm8k", "test.jsonl")
def test_gsm8k_extraction_agrees_with_the_datasets_own_answers() -> None:
    items = load_items("gsm8k", DATA_DIR, DATA_DIR)
    assert len(items) == 1319
    for it in items:
        assert it.solution is not None
        # The worked solution, given back as a reply, scores as correct against the extracted answer.
        assert SCORERS["numeric"](it, it.solution, {}).passed, it.id


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("The answer is (C).", "C"),
        ("Answer: b", "B"),
        ("I think (D) because ...", "D"),
        ("A. Narcolepsy", "A"),
        ("It must be narcolepsy.", None),
    ],
)
def test_choice_extraction(reply: str, letter: str | None) -> None:
    assert extract_choice(reply) == letter


def test_exact_contains_regex_and_json() -> None:
    it = item("Canberra")
    assert SCORERS["exact"](it, "canberra.", {}).passed
    assert not SCORERS["exact"](it, "It is Canberra.", {}).passed
    assert SCORERS["contains"](it, "It is Canberra.", {}).passed
    assert SCORERS["regex"](it, "ok 123", {"pattern": r"\d{3}"}).passed
    schema = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    assert SCORERS["json"](it, '```json\n{"name": "x"}\n```', {"schema": schema}).passed
    assert not SCORERS["json"](it, '{"name": 3}', {"schema": schema}).passed
    assert not SCORERS["json"](it, "{not json", {}).passed


def test_graded_scorers() -> None:
    assert token_f1("the cat sat", "cat sat down") == pytest.approx(0.8)
    # Articles dropped: LCS of [police killed gunman] and [gunman was killed by police] is one word: P 1/3, R 1/5.
    assert rouge_l("police killed the gunman", "the gunman was killed by police") == pytest.approx(0.25)
    assert rouge_l("a b c d", "a b c d") == 1.0 and rouge_l("x", "y") == 0.0
    v = SCORERS["f1"](item("cat sat down"), "the cat sat", {"threshold": 0.7})
    assert v.value == pytest.approx(0.8) and v.passed


def test_reference_based_hallucination_check() -> None:
    it = item("30", question="Within how many days can items be returned?", context="Return within 30 days.")
    assert hallucinated("You have 30 days.", it) is False
    assert hallucinated("You have 45 days, or 60 with Premium.", it) is True
