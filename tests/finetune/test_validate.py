"""`assay finetune validate`: planted problems found at their lines and nothing else, tokens as tiktoken counts
them, the epoch rule at its boundaries, the cookbook's toy example, warnings, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from assay.catalog.tokenizers import tokenizer_for
from assay.datasets.finetune import scan_training_file
from assay.economics.training import break_even, default_epochs
from tests.conftest import ASSAY

HAVE_TIKTOKEN = tokenizer_for("gpt-4o-mini").exact
needs_tiktoken = pytest.mark.skipif(
    not HAVE_TIKTOKEN and not os.environ.get("CI"), reason="no cached tiktoken encodings (make install-test)"
)
SYS = "You are a happy assistant that puts a positive spin on everything."


def chat(*turns: tuple[str, str], **extra: object) -> dict[str, object]:
    return {"messages": [{"role": r, "content": c} for r, c in turns], **extra}


def good(i: int) -> dict[str, object]:
    return chat(("system", "You answer briefly."), ("user", f"What is {i} plus {i}?"), ("assistant", f"It is {2 * i}."))


def write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# One planted problem of each OpenAI class, at a known line (1-based), among valid examples.
PLANTED_OPENAI = {
    3: ("invalid_json", '{"messages": [{"role": "user", "content": "hi"}'),
    5: ("data_type", ["not", "an", "object"]),
    7: ("missing_messages_list", {"conversation": [{"role": "user", "content": "hi"}]}),
    9: ("message_missing_key", {"messages": [{"role": "user"}, {"role": "assistant", "content": "ok"}]}),
    11: (
        "message_unrecognized_key",
        {"messages": [{"role": "user", "content": "hi", "mood": "sad"}, {"role": "assistant", "content": "ok"}]},
    ),
    13: ("unrecognized_role", chat(("customer", "hi"), ("assistant", "ok"))),
    15: ("missing_content", chat(("user", "hi"), ("assistant", ""))),
    17: ("example_missing_assistant_message", chat(("system", SYS), ("user", "hi"))),
    19: (
        "weight_out_of_range",
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok", "weight": 2}]},
    ),
    21: ("example_unrecognized_key", chat(("user", "hi"), ("assistant", "ok"), metadata={"id": 1})),
}


def planted_file(tmp_path: Path, planted: dict[int, tuple[str, object]], n: int = 24) -> Path:
    rows = [planted[i][1] if i in planted else good(i) for i in range(1, n + 1)]
    return write(tmp_path / "train.jsonl", rows)


def test_each_planted_openai_problem_is_reported_at_its_line_and_nothing_else(tmp_path: Path) -> None:
    scan = scan_training_file(planted_file(tmp_path, PLANTED_OPENAI), "openai")
    assert {(e.line, e.cls) for e in scan.errors} == {(line, cls) for line, (cls, _) in PLANTED_OPENAI.items()}
    assert scan.examples == 24 and scan.valid == 24 - len(PLANTED_OPENAI)
    assert scan.error_counts == {cls: 1 for cls, _ in PLANTED_OPENAI.values()}


@pytest.mark.parametrize(
    ("fmt", "planted"),
    [
        (
            "together",
            {
                4: ("mixed_formats", {"prompt": "Say hi", "completion": "hi"}),
                6: ("turns_out_of_order", chat(("user", "a"), ("user", "b"), ("assistant", "c"))),
            },
        ),
        (
            "fireworks",
            {
                2: ("turns_out_of_order", chat(("user", "a"), ("system", SYS), ("assistant", "c"))),
                8: (
                    "weight_out_of_range",
                    {
                        "messages": [
                            {"role": "user", "content": "a"},
                            {"role": "assistant", "content": "b", "weight": 0.5},
                        ]
                    },
                ),
            },
        ),
        (
            "anthropic-bedrock",
            {
                3: ("unrecognized_role", chat(("system", SYS), ("user", "a"), ("assistant", "b"))),
                5: ("turns_out_of_order", chat(("assistant", "a"), ("user", "b"), ("assistant", "c"))),
                7: ("turns_out_of_order", chat(("user", "a"), ("assistant", "b"), ("user", "c"))),
            },
        ),
    ],
)
def test_other_vendors_rules(tmp_path: Path, fmt: str, planted: dict[int, tuple[str, object]]) -> None:
    def ok(i: int) -> dict[str, object]:
        if fmt == "anthropic-bedrock":
            return {"system": SYS, **chat(("user", f"q{i}"), ("assistant", f"a{i}"))}
        return good(i)

    rows = [planted[i][1] if i in planted else ok(i) for i in range(1, 41)]
    scan = scan_training_file(write(tmp_path / "t.jsonl", rows), fmt)
    assert {(e.line, e.cls) for e in scan.errors} == {(line, cls) for line, (cls, _) in planted.items()}


def test_example_counts_per_vendor(tmp_path: Path) -> None:
    path = write(tmp_path / "few.jsonl", [good(i) for i in range(5)])
    assert [(e.line, e.cls) for e in scan_training_file(path, "openai").errors] == [(None, "too_few_examples")]
    assert scan_training_file(path, "fireworks").errors == []  # Fireworks takes 3 or more
    bedrock = write(tmp_path / "b.jsonl", [{"system": SYS, **chat(("user", "q"), ("assistant", "a"))}] * 31)
    assert [(e.line, e.cls) for e in scan_training_file(bedrock, "anthropic-bedrock").errors] == [
        (None, "too_few_examples")  # Bedrock takes 32 or more
    ]


def test_tool_calls_and_content_parts_are_valid_openai(tmp_path: Path) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    rows = [good(i) for i in range(10)] + [
        {
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                {"role": "assistant", "content": "Sunny.", "weight": 1},
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "describe"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    ],
                },
                {"role": "assistant", "content": "A cat."},
            ]
        },
    ]
    scan = scan_training_file(write(tmp_path / "tools.jsonl", rows), "openai")
    assert scan.errors == [] and scan.valid == 12


@needs_tiktoken
def test_token_counts_equal_tiktoken(tmp_path: Path) -> None:
    import tiktoken

    rows = [good(i) for i in range(12)] + [chat(("user", "Ünïcödé 🎉 <|endoftext|> text"), ("assistant", "ok " * 50))]
    scan = scan_training_file(write(tmp_path / "t.jsonl", rows), "openai", "gpt-4o-mini")
    enc = tiktoken.get_encoding("o200k_base")
    expected = [
        sum(3 + len(enc.encode_ordinary(m["role"])) + len(enc.encode_ordinary(m["content"])) for m in r["messages"]) + 3
        for r in rows
    ]
    assert scan.tokenizer.name == "o200k_base" and scan.tokenizer.exact
    assert scan.example_tokens.tolist() == expected
    trained = [
        sum(len(enc.encode_ordinary(m["content"])) for m in r["messages"] if m["role"] == "assistant") for r in rows
    ]
    assert scan.assistant.total == sum(trained)
    assert scan.tokens.p5 == pytest.approx(float(__import__("numpy").percentile(expected, 5)))


def test_without_an_offline_tokenizer_the_count_says_it_is_an_estimate(tmp_path: Path) -> None:
    scan = scan_training_file(write(tmp_path / "t.jsonl", [good(i) for i in range(3)]), "fireworks", "llama-v3p1-8b")
    assert scan.tokenizer.name == "estimate" and not scan.tokenizer.exact and "estimate" in scan.tokenizer.note


@pytest.mark.parametrize(
    ("n", "epochs"),
    [(1, 25), (3, 25), (4, 25), (5, 20), (33, 3), (34, 3), (8333, 3), (8334, 2), (12500, 2), (12501, 1), (30000, 1)],
)
def test_openai_epoch_rule_at_its_boundaries(n: int, epochs: int) -> None:
    assert default_epochs(n) == epochs


def test_other_vendors_default_epochs() -> None:
    assert (default_epochs(5, "together"), default_epochs(5, "fireworks"), default_epochs(5, "anthropic-bedrock")) == (
        1,
        1,
        2,
    )


def toy_file(tmp_path: Path) -> Path:
    """The OpenAI cookbook's data-prep example (examples/data/toy_chat_fine_tuning.jsonl), rebuilt line for line."""
    rows = [
        chat(
            ("system", SYS),
            ("user", "I fell off my bike today."),
            ("assistant", "It's great that you're getting exercise outdoors!"),
        ),
        chat(
            ("system", SYS),
            ("user", "I lost my tennis match today."),
            ("assistant", "It's ok, it happens to everyone."),
            ("user", "But I trained so hard!"),
            ("assistant", "It will pay off next time."),
            ("user", "I'm going to switch to golf."),
            ("assistant", "Golf is fun too!"),
            ("user", "I don't even know how to play golf."),
            ("assistant", "It's easy to learn!"),
        ),
        chat(("user", "I lost my book today."), ("assistant", "You can read everything on ebooks these days!")),
        chat(("system", SYS), ("assistant", "You're great!")),
        chat(("system", SYS), ("user", "I'm hungry."), ("assistant", "Eat a banana!" * 2000)),
    ]
    path = write(tmp_path / "toy_chat_fine_tuning.jsonl", rows)
    assert path.stat().st_size == 27385  # the cookbook's file, byte for byte in length
    return path


@needs_tiktoken
def test_the_cookbooks_toy_example_reproduces_its_totals(tmp_path: Path) -> None:
    # The notebook counts with cl100k_base (gpt-3.5-turbo). Its printed billing (~4306 tokens, 20 epochs, ~86120)
    # came from its former 4,096-token cap; its code now caps at 16,385, which bills all 8,242.
    scan = scan_training_file(toy_file(tmp_path), "openai", "gpt-3.5-turbo", max_example_tokens=4096)
    assert (scan.messages.min, scan.messages.max, scan.messages.mean, scan.messages.p50) == (2, 9, 3.8, 3.0)
    assert (scan.tokens.min, scan.tokens.max, scan.tokens.p50) == (26, 8032, 45.0)
    assert scan.tokens.mean == pytest.approx(1648.4)
    assert (scan.assistant.min, scan.assistant.max, scan.assistant.p50) == (4, 8000, 10.0)
    assert scan.assistant.mean == pytest.approx(1610.2)
    epochs = default_epochs(scan.examples)
    assert (scan.billed_tokens(1), epochs, scan.billed_tokens(epochs)) == (4306, 20, 86120)
    warned = {w.cls: w.lines for w in scan.warnings}
    assert warned == {"missing_system": [3], "missing_user": [4], "truncated": [5]}
    at_16k = scan_training_file(toy_file(tmp_path), "openai", "gpt-3.5-turbo", max_example_tokens=16385)
    assert at_16k.billed_tokens(20) == 8242 * 20


def test_warnings_duplicates_contamination_and_secrets(tmp_path: Path) -> None:
    rows = [good(i) for i in range(12)]
    rows[5] = good(1)  # exact duplicate of line 2
    rows[6] = chat(
        ("system", "you ANSWER briefly!"), ("user", "what is 1 plus 1"), ("assistant", "It is 2")
    )  # near line 2
    rows[8] = chat(("user", "Mail me at jane.doe@example.com or +1 415-555-0100"), ("assistant", "Noted."))
    rows[9] = chat(("user", "my key is sk-proj-abcdefghijklmnopqrstuvwxyz123456"), ("assistant", "Revoke it."))
    rows[10] = chat(("user", "card 4111 1111 1111 1111 please"), ("assistant", "Never share it."))
    rows[4] = chat(("user", "Call me at +1 415 234 5678."), ("assistant", "Will do."))  # a number ending a sentence
    question = "Which planet in our solar system is known as the red planet because of iron oxide dust"
    rows[11] = chat(("user", f"Quick one: {question}?"), ("assistant", "Mars."))
    scan = scan_training_file(write(tmp_path / "w.jsonl", rows), "openai", eval_questions=[question, "short one"])
    warned = {w.cls: w.lines for w in scan.warnings}
    assert warned["exact_duplicate"] == [6]
    assert warned["near_duplicate"] == [7]
    assert warned["pii_email"] == [9] and warned["pii_phone"] == [5, 9]
    assert warned["secret_key"] == [10]
    assert warned["pii_card"] == [11]
    assert warned["eval_contamination"] == [12]
    assert scan.errors == []


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ASSAY, "finetune", "validate", *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_cli_json_table_and_exit_codes(tmp_path: Path) -> None:
    bad = planted_file(tmp_path, PLANTED_OPENAI)
    r = run(str(bad), "--json", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    for key in ("examples", "valid", "errors", "warnings", "tokens", "epochs", "billed_tokens", "cost_usd"):
        assert key in doc
    assert {(e["line"], e["class"]) for e in doc["errors"]} == {(ln, c) for ln, (c, _) in PLANTED_OPENAI.items()}
    assert all(set(e) == {"line", "class", "detail"} for e in doc["errors"])
    clean = write(tmp_path / "clean.jsonl", [good(i) for i in range(40)])
    r = run(str(clean), "--model", "gpt-4o-mini", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["valid"] == 40 and doc["epochs"] == 3 and doc["price_per_mtok"] == 3.0
    assert doc["billed_tokens"] == 3 * doc["tokens"]["total"]
    assert doc["cost_usd"] == pytest.approx(doc["billed_tokens"] * 3.0 / 1e6)
    r = run(str(bad), cwd=tmp_path)
    assert r.returncode == 1 and "line" in r.stdout and "message_unrecognized_key" in r.stdout
    assert "training:" in r.stdout and "epochs" in r.stdout


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.jsonl", "no such file"),
        (lambda p: (p / "bin.jsonl").write_bytes(b"\x7fELF\x00\x01") and p / "bin.jsonl", "binary file"),
        (lambda p: (p / "empty.jsonl").write_text("") == 0 and p / "empty.jsonl", "empty"),
        (lambda p: p, "directory"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path: Path, make: object, message: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    before = sorted(tmp_path.iterdir())
    r = run(str(path), cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and r.stderr.startswith("error:")
    assert sorted(tmp_path.iterdir()) == before  # nothing written
    assert "Traceback" not in r.stderr


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    r = run(str(write(tmp_path / "a.jsonl", [good(1)])), "--format", "cohere", cwd=tmp_path)
    assert r.returncode == 2 and "--format" in r.stderr


def test_break_even_arithmetic() -> None:
    from decimal import Decimal

    be = break_even(Decimal("120"), 0.01, 0.004, monthly_requests=5000, months=12)
    assert be.saving_per_request_usd == Decimal("0.006")
    assert be.break_even_monthly_requests == Decimal(120) / (Decimal("0.006") * 12)  # 1,666.67 a month
    assert be.payback_months == Decimal(120) / (Decimal("0.006") * 5000)  # 4 months
    assert break_even(Decimal(10), 0.001, 0.002).break_even_monthly_requests is None


def test_a_file_scanned_in_parallel_chunks_gives_the_one_pass_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assay.datasets import finetune

    rows: list[object] = [good(i) for i in range(3000)]
    for line, (_, row) in PLANTED_OPENAI.items():
        for at in (line, line + 997, line + 1999):  # some near where the cuts fall
            rows[at - 1] = row
    rows[2500] = good(7)  # a duplicate in another chunk than its original
    path = write(tmp_path / "big.jsonl", rows)
    one = scan_training_file(path, "openai", workers=1)
    monkeypatch.setattr(finetune, "_PARALLEL_BYTES", 0)
    monkeypatch.setattr(finetune, "_CHUNK_MIN_BYTES", 20_000)  # many chunks, cut mid-file
    with path.open("rb") as f:
        chunks = finetune._chunks(f, path.stat().st_size, 2)
    assert len(chunks) >= 4 and chunks[-1][1] == path.stat().st_size
    par = scan_training_file(path, "openai", workers=2)

    def seen(s: object) -> tuple[object, ...]:
        return (
            s.examples,
            s.valid,
            [e.to_json() for e in s.errors],
            s.error_counts,  # type: ignore[attr-defined]
            [w.to_json() for w in s.warnings],
            s.tokens,
            s.example_tokens.tolist(),
        )  # type: ignore[attr-defined]

    assert seen(par) == seen(one)
    assert {(e.line, e.cls) for e in par.errors} >= {(line + 997, cls) for line, (cls, _) in PLANTED_OPENAI.items()}


def test_crlf_line_ends_a_byte_order_mark_and_no_final_newline_are_read(tmp_path: Path) -> None:
    body = "\r\n".join(json.dumps(good(i)) for i in range(12))
    path = tmp_path / "windows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    scan = scan_training_file(path, "openai")
    assert scan.errors == [] and scan.valid == 12
    assert [(w.cls, w.lines) for w in scan.warnings] == [("byte_order_mark", [1])]
