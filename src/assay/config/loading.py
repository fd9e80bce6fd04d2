"""YAML to a validated model, with every problem reported as `file:line: field: what was expected`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from assay.errors import ConfigError

__all__ = ["Problem", "parse_yaml_model", "read_text"]

# A problem found beyond the schema: (field path, message), reported at the field's line.
Problem = tuple[tuple[Any, ...], str]
M = TypeVar("M", bound=BaseModel)


def read_text(path: Path, what: str = "file", hint: str = "") -> str:
    """A UTF-8 text file's contents; a ConfigError naming the file (and where the bad bytes are) otherwise."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}{hint}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a {what}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); save the file as UTF-8"
        ) from None


def parse_yaml_model(
    text: str,
    source: str,
    model: type[M],
    expected: str,
    reference: str,
    checks: Sequence[Callable[[M], list[Problem]]] = (),
    union_tags: frozenset[str] = frozenset(),
) -> M:
    """Validate YAML text as `model`; raise ConfigError with every problem as `source:line: field: message`.

    `checks` run on the validated model and report the same way, so a problem found
    by a lower layer (a price missing from the catalog) still points at its line.
    `union_tags` are the tags of tagged unions, which pydantic adds to an error's
    path but the file does not have.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML: {e.problem}") from None
    if data is None:
        raise ConfigError(f"{source}: the file is empty; expected {expected}")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: expected {expected} at the top level, got {type(data).__name__}")
    lines = _line_index(node)
    try:
        validated = model.model_validate(data)
    except ValidationError as e:
        problems = [_describe(err, lines, source, reference, union_tags) for err in e.errors()]
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems) from None
    found = [(loc, msg) for check in checks for loc, msg in check(validated)]
    if found:
        errors = [{"loc": loc, "type": "check", "msg": msg} for loc, msg in found]
        problems = [_describe(err, lines, source, reference, union_tags) for err in errors]
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems)
    return validated


def _line_index(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map each field path (as pydantic spells `loc`) to its 1-based line in the file."""
    out: dict[tuple[Any, ...], int] = {}
    if node is None:
        return out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[(*path, k)] = key.start_mark.line + 1
            out.update({p: ln for p, ln in _line_index(value, (*path, k)).items() if p != (*path, k)})
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.update(_line_index(item, (*path, i)))
    return out


def _describe(
    err: Any, lines: dict[tuple[Any, ...], int], source: str, reference: str, union_tags: frozenset[str]
) -> str:
    loc = (*err["loc"], *(err.get("ctx") or {}).get("at", ()))  # a validator may point inside its field
    loc = tuple(p for i, p in enumerate(loc) if not (p in union_tags and i and isinstance(loc[i - 1], int)))
    probe = loc
    while probe and probe not in lines:
        probe = probe[:-1]
    line = lines.get(probe, 1)
    field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[") or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        msg = f"unknown key; check the spelling (allowed keys are listed in {reference})"
    elif kind == "missing":
        msg = "required field is missing"
    else:
        msg = err["msg"].removeprefix("Value error, ")
        if "input" in err and not isinstance(err["input"], dict | list):
            msg += f" (got {err['input']!r})"
    return f"{source}:{line}: {field}: {msg}"
