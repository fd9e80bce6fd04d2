"""A fine-tuning training file, checked line by line: errors, warnings and token statistics, in bounded memory.

The file is streamed (a 1 GB file is never held whole): each line is parsed
and checked on its own (finetune_formats.py), its texts are counted in
batches with the model's tokenizer, and what the statistics need is kept as
compact arrays (a token count and two 8-byte hashes an example). Warnings
are what the vendor accepts but the user should know: no system or user
message, examples that will be truncated, exact and near duplicates, examples
that also appear in an eval suite of the project (the benchmark would be
contaminated), and secrets or personal data, with counts and lines.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import os
import re
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

from assay.catalog.tokenizers import DEFAULT_OPENAI, Tokenizer, tokenizer_for
from assay.catalog.training import training_price
from assay.datasets.finetune_formats import FORMATS, Example, Format, Problem, check_example, shape_of
from assay.errors import ConfigError

__all__ = ["FileWarning", "TokenStats", "TrainingFile", "eval_item_keys", "scan_stream", "scan_training_file"]

_BATCH = 512  # examples whose texts are counted in one tokenizer call
_SHOW_LINES = 20  # lines listed with each warning
_WINDOW = 8  # words: an eval item is recognised by any run of this many of its question's words


@dataclass(frozen=True)
class FileWarning:
    """Something the vendor accepts but the user should know, with how often and where."""

    cls: str
    count: int
    lines: list[int]
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"class": self.cls, "count": self.count, "lines": self.lines, "detail": self.detail}


@dataclass(frozen=True)
class TokenStats:
    """A distribution of per-example token counts: true percentiles (p5, p50, p95), not the 10th/90th."""

    n: int
    total: int
    min: int
    max: int
    mean: float
    p5: float
    p50: float
    p95: float

    @classmethod
    def of(cls, values: array[int] | list[int]) -> TokenStats:
        if not len(values):
            return cls(0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0)
        x = np.frombuffer(values, dtype=np.uint32) if isinstance(values, array) else np.asarray(values)
        p5, p50, p95 = (float(v) for v in np.percentile(x, [5, 50, 95]))
        return cls(len(x), int(x.sum()), int(x.min()), int(x.max()), float(x.mean()), p5, p50, p95)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TrainingFile:
    """What a scan found: counts, every error (up to a cap, with full counts), warnings and token statistics."""

    path: str
    format: str
    examples: int  # lines holding an example (blank lines are not examples)
    valid: int  # examples with no error
    errors: list[Problem]
    error_counts: dict[str, int]
    warnings: list[FileWarning]
    tokenizer: Tokenizer
    tokens: TokenStats  # whole examples, as the vendor bills them (valid examples)
    assistant: TokenStats  # the assistant tokens trained on (weight 1), per valid example
    messages: TokenStats  # messages per valid example
    example_tokens: array[int] = field(repr=False, default_factory=lambda: array("I"))  # per valid example
    limit_tokens: int = 0  # the longest example the model trains on

    @property
    def ok(self) -> bool:
        return not self.error_counts

    def billed_tokens(self, epochs: int) -> int:
        """Tokens billed for `epochs`: each valid example up to the limit (longer ones are truncated), times epochs."""
        if not len(self.example_tokens):
            return 0
        x = np.frombuffer(self.example_tokens, dtype=np.uint32).astype(np.int64)
        return int(np.minimum(x, self.limit_tokens).sum()) * epochs


def _hash(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


# ASCII letters and digits are kept (lower-cased), everything else ASCII becomes a space; bytes above 127 (the
# UTF-8 of other scripts) are kept, so words in any script still count. bytes.translate runs in C.
_WORD_BYTES = bytes(
    (c + 32 if 65 <= c <= 90 else c) if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c >= 128) else 32
    for c in range(256)
)


def _norm_words(text: str) -> list[bytes]:
    return text.encode("utf-8", "surrogatepass").translate(_WORD_BYTES).split()


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_KEY = re.compile(
    r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|xox[abprs]-[A-Za-z0-9-]{10,}|"
    r"AIza[0-9A-Za-z_-]{35})\b|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
_KEY_HINTS = ("sk-", "AKIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox", "AIza", "-----BEGIN")
# A run of digits and separators starts with a digit, "+" or "(": the engine skips to those characters, so a
# text without numbers costs one scan. Each run is then read as a card number or a phone number.
_NUMBERISH = re.compile(r"[+(]?\d[\d ().-]{5,}\d")
_PHONE = re.compile(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}")
_CARD = re.compile(r"(?:\d[ -]?){12,18}\d")
_SENSITIVE_TEXT = {
    "pii_email": "email addresses",
    "pii_phone": "phone numbers",
    "secret_key": "API keys or private keys",
    "pii_card": "payment card numbers (Luhn-valid)",
}


def _luhn(digits: str) -> bool:
    d = [int(c) for c in digits if c.isdigit()]
    if not 13 <= len(d) <= 19:
        return False
    total = sum(x if i % 2 == 0 else (x * 2 - 9 if x > 4 else x * 2) for i, x in enumerate(reversed(d)))
    return total % 10 == 0


class _Scan:
    """The state of one pass over a file."""

    def __init__(self, fmt: Format, tok: Tokenizer, limit: int, eval_keys: set[int], max_errors: int) -> None:
        self.fmt, self.tok, self.limit, self.eval_keys, self.max_errors = fmt, tok, limit, eval_keys, max_errors
        self.examples = self.valid = 0
        self.errors: list[Problem] = []
        self.error_counts: dict[str, int] = {}
        self.file_shape: str | None = None
        self.pending: list[tuple[int, Example]] = []
        self.tokens: array[int] = array("I")
        self.assistant: array[int] = array("I")
        self.messages: array[int] = array("I")
        self.exact: array[int] = array("Q")
        self.near: array[int] = array("Q")
        self.lines: array[int] = array("I")  # line of each valid example, in order
        self.flags: dict[str, list[int]] = {}  # warning class -> its first lines (the ones shown)
        self.flag_counts: dict[str, int] = {}  # warning class -> how many (memory stays flat on a huge file)
        self.role_tokens: dict[str, int] = {}

    _PARTS = (
        "examples",
        "valid",
        "errors",
        "error_counts",
        "tokens",
        "assistant",
        "messages",
        "exact",
        "near",
        "lines",
        "flags",
        "flag_counts",
    )

    def state(self) -> dict[str, Any]:
        """What a chunk's scan found, to merge into the whole file's (a worker process sends it back)."""
        self.flush()
        return {k: getattr(self, k) for k in self._PARTS}

    def merge(self, part: dict[str, Any]) -> None:
        """Add the next chunk's findings (chunks are merged in file order, so every list stays in line order)."""
        self.examples += part["examples"]
        self.valid += part["valid"]
        for e in part["errors"]:
            if len(self.errors) < self.max_errors:
                self.errors.append(e)
        for cls, k in part["error_counts"].items():
            self.error_counts[cls] = self.error_counts.get(cls, 0) + k
        for key in ("tokens", "assistant", "messages", "exact", "near", "lines"):
            getattr(self, key).extend(part[key])
        for cls, lines in part["flags"].items():
            mine = self.flags.setdefault(cls, [])
            mine.extend(lines[: max(0, _SHOW_LINES - len(mine))])
            self.flag_counts[cls] = self.flag_counts.get(cls, 0) + part["flag_counts"][cls]

    def flag(self, cls: str, line: int) -> None:
        self.flag_counts[cls] = self.flag_counts.get(cls, 0) + 1
        lines = self.flags.setdefault(cls, [])
        if len(lines) < _SHOW_LINES:
            lines.append(line)

    def error(self, p: Problem) -> None:
        self.error_counts[p.cls] = self.error_counts.get(p.cls, 0) + 1
        if len(self.errors) < self.max_errors:
            self.errors.append(p)

    def line(self, n: int, raw: bytes) -> None:
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark, as Windows editors write
            raw = raw[3:]
            self.flag("byte_order_mark", n)
        if not raw.strip():
            self.flag("blank_line", n)
            return
        self.examples += 1
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            self.error(Problem(n, "invalid_json", str(e)))
            return
        problems, example = check_example(obj, n, self.fmt, self.file_shape)
        if example is not None and self.file_shape is None:
            self.file_shape = example.shape
        for p in problems:
            self.error(p)
        if problems or example is None:
            return
        self.valid += 1
        self.lines.append(n)
        self.exact.append(_hash(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)))
        self.pending.append((n, example))
        if len(self.pending) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        texts = [t for _, ex in batch for t in (*ex.texts, *ex.extra)]
        counts = iter(self.tok.count_batch(texts))
        for n, ex in batch:
            per = [next(counts) for _ in ex.texts]
            extra = sum(next(counts) for _ in ex.extra)
            if ex.shape == "messages":  # the cookbook's rule: 3 a message, its role, 3 to prime the reply
                roles = sum(self._role(r) for r in ex.roles)
                total = 3 * len(ex.texts) + roles + sum(per) + ex.names + extra + 3
            else:
                total = sum(per) + extra
            trained = sum(per[i] for i in ex.trained)
            self.tokens.append(total)
            self.assistant.append(trained)
            self.messages.append(len(ex.texts))
            if total > self.limit and self.fmt.truncates:
                self.flag("truncated", n)
            elif total > self.limit:  # a vendor that refuses long examples rather than truncating them
                self.error(Problem(n, "example_too_long", f"{total:,} tokens; {self.fmt.name} takes {self.limit:,}"))
                self.valid -= 1
            if not ex.has_system:
                self.flag("missing_system", n)
            if not ex.has_user:
                self.flag("missing_user", n)
            if not ex.trained or trained == 0:
                self.flag("nothing_trained", n)
            self.near.append(_hash(b" ".join(_norm_words(" ".join(ex.texts)))))
            if self.eval_keys:
                user = _norm_words(" ".join(t for r, t in zip(ex.roles, ex.texts, strict=True) if r == "user"))
                if any(
                    _hash(b" ".join(user[i : i + _WINDOW])) in self.eval_keys
                    for i in range(max(0, len(user) - _WINDOW + 1))
                ):
                    self.flag("eval_contamination", n)
            self._sensitive(n, " ".join(ex.texts + ex.extra))

    def _role(self, role: str) -> int:
        if role not in self.role_tokens:
            self.role_tokens[role] = self.tok.count(role)
        return self.role_tokens[role]

    def _sensitive(self, n: int, text: str) -> None:
        found = set()
        if "@" in text and _EMAIL.search(text):
            found.add("pii_email")
        if any(h in text for h in _KEY_HINTS) and _KEY.search(text):
            found.add("secret_key")
        for m in _NUMBERISH.finditer(text):
            before = text[m.start() - 1] if m.start() else " "
            if before.isalnum() or before in "._":
                continue  # inside a word, an identifier or a decimal
            run = m.group()
            if _CARD.fullmatch(run) and _luhn(run):
                found.add("pii_card")
            elif _PHONE.fullmatch(run):
                found.add("pii_phone")
        for cls in found:
            self.flag(cls, n)


_WARNING_TEXT = {
    "missing_system": "examples with no system message (the model learns no instructions for them)",
    "missing_user": "examples with no user message",
    "truncated": "examples over the {limit:,}-token training context: they will be truncated",
    "nothing_trained": "examples with no assistant tokens trained on (every assistant weight is 0)",
    "exact_duplicate": "exact duplicates of an earlier example",
    "near_duplicate": "near-duplicates of an earlier example (the same words, ignoring case and punctuation)",
    "eval_contamination": "examples containing an item of the project's eval suites (the eval would be contaminated)",
    "blank_line": "blank lines (skipped)",
    "byte_order_mark": "a UTF-8 byte-order mark at the start of the file (read past; some uploaders refuse it)",
}


def _duplicates(hashes: array[int], lines: array[int]) -> np.ndarray[Any, Any]:
    """Lines whose hash appeared on an earlier line, in file order."""
    if not len(hashes):
        return np.zeros(0, dtype=np.uint32)
    h = np.frombuffer(hashes, dtype=np.uint64)
    ln = np.frombuffer(lines, dtype=np.uint32)
    order = np.lexsort((ln, h))
    hs = h[order]
    later = np.zeros(len(hs), dtype=bool)
    later[1:] = hs[1:] == hs[:-1]
    return np.sort(ln[order][later])


def eval_item_keys(questions: Iterable[str]) -> set[int]:
    """Hashes of every run of 8 words of each question: what a contaminated example would contain."""
    keys: set[int] = set()
    for q in questions:
        words = _norm_words(q)
        if len(words) < _WINDOW:
            continue
        keys.update(_hash(b" ".join(words[i : i + _WINDOW])) for i in range(len(words) - _WINDOW + 1))
    return keys


def _open(path: Path) -> tuple[BinaryIO, int]:
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (expected a JSONL training file)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a JSONL training file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    head = f.read(65536)
    f.seek(0)
    nul = head.find(b"\0")
    if nul >= 0:
        f.close()
        raise ConfigError(
            f"{path}: a binary file (NUL byte at offset {nul}); expected JSONL text, one JSON object a line"
        )
    size = path.stat().st_size
    if size == 0:
        f.close()
        raise ConfigError(f"{path}: the file is empty; expected JSONL, one training example a line")
    return f, size


def scan_training_file(
    path: str | Path,
    fmt: str,
    model: str | None = None,
    *,
    max_example_tokens: int | None = None,
    eval_questions: Iterable[str] = (),
    max_errors: int = 1000,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> TrainingFile:
    """Check every line of a training file for `fmt`; count tokens with `model`'s tokenizer where one is here.

    A file over 16 MB is cut at line ends into chunks scanned by `workers` processes (default: one a core) and
    merged in file order, so the result is the same as one pass.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown training-file format {fmt!r}; expected one of {', '.join(FORMATS)}")
    p = Path(path)
    f, size = _open(p)
    default = DEFAULT_OPENAI if fmt == "openai" else None
    tok = tokenizer_for(model, default)
    known = training_price(model)
    limit = max_example_tokens or (known.context if known and known.context else None)
    questions = list(eval_questions)
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    with f:
        if size < _PARALLEL_BYTES or n_workers < 2:
            return scan_stream(f, size, fmt, tok, str(p), limit, questions, max_errors, on_progress)
        chunks = _chunks(f, size, n_workers)
    rules = FORMATS[fmt]
    task = _Task(
        str(p),
        fmt,
        model,
        default,
        limit or rules.max_example_tokens,
        eval_item_keys(questions),
        max_errors,
        _first_shape(p),
    )
    scan = _Scan(rules, tok, task.limit, task.eval_keys, max_errors)
    done = 0
    # Not fork: the caller may hold threads (a progress bar's) whose locks a forked child would inherit. Not spawn:
    # it re-imports the caller's __main__ (the whole CLI) in every worker. A fork server starts clean.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["assay.datasets.finetune"])  # what a worker needs, loaded once, shared by fork
    with concurrent.futures.ProcessPoolExecutor(n_workers, mp_context=ctx) as pool:
        for (start, end, _), part in zip(chunks, pool.map(_scan_chunk, [(task, c) for c in chunks]), strict=True):
            scan.merge(part)
            done += end - start
            if on_progress is not None:
                on_progress(done, size)
    return _finish(scan, fmt, str(p))


_PARALLEL_BYTES = 16 * 1024 * 1024  # smaller files are done before worker processes would have started
_CHUNK_MIN_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class _Task:
    """What each worker needs to scan its chunk as the whole-file scan would."""

    path: str
    fmt: str
    model: str | None
    default_encoding: str | None
    limit: int
    eval_keys: set[int]
    max_errors: int
    file_shape: str | None


def _chunks(f: BinaryIO, size: int, workers: int) -> list[tuple[int, int, int]]:
    """(start, end, first line number) of chunks that end at line ends: a few per worker, so progress moves."""
    target = max(_CHUNK_MIN_BYTES, size // (workers * 4))
    out: list[tuple[int, int, int]] = []
    start, line = 0, 1
    while start < size:
        f.seek(min(size, start + target))
        f.readline()  # to the end of the line the cut fell in
        end = min(size, f.tell()) if start + target < size else size
        f.seek(start)
        out.append((start, end, line))
        line += f.read(end - start).count(b"\n")
        start = end
    return out


def _first_shape(path: Path) -> str | None:
    """The shape of the file's first example that has one (Together's "one format a file" rule)."""
    with path.open("rb") as f:
        for raw in f:
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return shape_of(obj)
    return None


def _scan_chunk(job: tuple[_Task, tuple[int, int, int]]) -> dict[str, Any]:
    """One worker's part: the lines of [start, end), numbered from the chunk's first line."""
    task, (start, end, first) = job
    scan = _Scan(
        FORMATS[task.fmt], tokenizer_for(task.model, task.default_encoding), task.limit, task.eval_keys, task.max_errors
    )
    scan.file_shape = task.file_shape
    with open(task.path, "rb") as f:
        f.seek(start)
        at, n = start, first
        while at < end:
            raw = f.readline()
            if not raw:
                break
            scan.line(n, raw)
            at, n = at + len(raw), n + 1
    return scan.state()


def scan_stream(
    f: BinaryIO,
    size: int,
    fmt: str,
    tok: Tokenizer,
    name: str = "<stream>",
    max_example_tokens: int | None = None,
    eval_questions: Iterable[str] = (),
    max_errors: int = 1000,
    on_progress: Callable[[int, int], None] | None = None,
) -> TrainingFile:
    """The scan of JSONL read from `f` (a file, or the bytes a server was sent), counted with `tok`."""
    rules = FORMATS[fmt]
    limit = max_example_tokens or rules.max_example_tokens
    scan = _Scan(rules, tok, limit, eval_item_keys(eval_questions), max_errors)
    done = 0
    for n, raw in enumerate(f, start=1):
        scan.line(n, raw)
        done += len(raw)
        if on_progress is not None and n % 2048 == 0:
            on_progress(done, size)
    scan.flush()
    if on_progress is not None:
        on_progress(size, size)
    return _finish(scan, fmt, name)


def _finish(scan: _Scan, fmt: str, name: str) -> TrainingFile:
    """File-level checks, duplicates and warnings, once every line has been seen."""
    rules, limit, tok = scan.fmt, scan.limit, scan.tok
    if scan.examples < rules.min_examples:
        scan.error(
            Problem(None, "too_few_examples", f"{scan.examples} example(s); {fmt} needs at least {rules.min_examples}")
        )
    if rules.max_examples is not None and scan.examples > rules.max_examples:
        scan.error(
            Problem(
                None, "too_many_examples", f"{scan.examples:,} examples; {fmt} takes at most {rules.max_examples:,}"
            )
        )
    exact = _duplicates(scan.exact, scan.lines)
    near = _duplicates(scan.near, scan.lines)
    near = near[~np.isin(near, exact)]
    for cls, found in (("exact_duplicate", exact), ("near_duplicate", near)):
        scan.flags[cls], scan.flag_counts[cls] = [int(x) for x in found[:_SHOW_LINES]], len(found)
    warnings = []
    for cls, lines in scan.flags.items():
        if not lines:
            continue
        text = _WARNING_TEXT.get(cls) or f"examples with {_SENSITIVE_TEXT[cls]}"
        warnings.append(FileWarning(cls, scan.flag_counts[cls], lines, text.format(limit=limit)))
    return TrainingFile(
        path=name,
        format=fmt,
        examples=scan.examples,
        valid=scan.valid,
        errors=sorted(scan.errors, key=lambda e: (e.line or 0, e.cls)),
        error_counts=scan.error_counts,
        warnings=warnings,
        tokenizer=tok,
        tokens=TokenStats.of(scan.tokens),
        assistant=TokenStats.of(scan.assistant),
        messages=TokenStats.of(scan.messages),
        example_tokens=scan.tokens,
        limit_tokens=limit,
    )
