"""The project file (`assay.yaml`): schema, loading, and errors that point at lines.

Every section is a `StrictModel`, so a misspelt key is an error, not a silent
default. `load_config` reports *every* problem at once, each with the file,
the line, the field path and what was expected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from assay.errors import ConfigError
from assay.model import StrictModel, Target

__all__ = [
    "SLO",
    "Check",
    "Constraints",
    "JudgeSettings",
    "ProbeSettings",
    "ProjectConfig",
    "SuiteConfig",
    "TcoSettings",
    "Workload",
    "example_config_text",
    "load_config",
    "missing_key_envs",
    "parse_config",
    "parse_yaml_model",
    "state_dir",
]

# A check beyond the schema (e.g. "every target has a price"), run after validation: (field path, message) pairs.
Check = Callable[["ProjectConfig"], list[tuple[tuple[Any, ...], str]]]


class ProbeSettings(StrictModel):
    """Defaults for `assay probe`; command-line options override them."""

    requests: int = Field(default=50, ge=1, le=1_000_000)
    concurrency: int = Field(default=4, ge=1, le=10_000)
    timeout_s: float = Field(default=60.0, gt=0, description="Total time allowed for one request.")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    first_token_timeout_s: float = Field(default=30.0, gt=0)
    idle_timeout_s: float = Field(default=30.0, gt=0, description="Longest allowed gap between stream chunks.")
    prompt: str = "Explain in three sentences why the sky is blue."
    max_tokens: int = Field(default=128, ge=1)
    stream: bool = True
    retries: int = Field(default=0, ge=0, le=10, description="Retries per item; 0 measures the raw API.")
    duration_s: float | None = Field(
        default=None,
        gt=0,
        description="Spread each target's requests evenly over this many seconds (uptime over time).",
    )
    bucket_s: float | None = Field(default=None, gt=0, description="Uptime bucket width; default ~20 buckets.")


class SLO(StrictModel):
    """Service-level objectives; latency tiers and (later) goodput read them."""

    ttft_ms: float | None = Field(default=None, gt=0)
    e2e_ms: float | None = Field(default=None, gt=0)
    tpot_ms: float | None = Field(default=None, gt=0)
    success_rate: float | None = Field(default=None, ge=0, le=1)


class Workload(StrictModel):
    """The traffic a deployment must carry, for cost and capacity (see docs/COST.md)."""

    daily_active_users: float = Field(gt=0)
    conversations_per_user_per_day: float = Field(default=1.0, gt=0)
    turns_per_conversation: int = Field(default=1, ge=1, le=1000)
    input_tokens_per_turn: float = Field(ge=0, description="New tokens the user and system add each turn.")
    output_tokens_per_turn: float = Field(ge=0)
    reasoning_tokens_per_turn: float = Field(default=0.0, ge=0, description="Billed as output; not in the reply.")
    history: Literal["full", "none"] = Field(
        default="full", description="full: each turn resends all earlier turns; none: it does not."
    )
    cached_input_fraction: float = Field(default=0.0, ge=0, le=1, description="Share of input billed as cache reads.")
    days_per_month: float = Field(default=30.0, gt=0, le=31)
    peak_to_average: float = Field(default=3.0, ge=1, le=1000, description="Peak traffic over the monthly average.")
    monthly_growth: float = Field(default=0.0, gt=-1, le=10, description="Compound growth of volume per month.")


class Constraints(StrictModel):
    """Limits a choice must respect; `assay cost` reports each as pass/fail with the margin."""

    monthly_budget_usd: float | None = Field(default=None, gt=0)
    max_cost_per_interaction_usd: float | None = Field(default=None, gt=0)
    p95_latency_ms: float | None = Field(default=None, gt=0, description="Checked against a measured run (--run).")


class TcoSettings(StrictModel):
    """Defaults for `assay tco`."""

    months: int = Field(default=36, ge=1, le=120)
    sensitivity: float = Field(default=0.2, gt=0, lt=1, description="Tornado swing: each input moved ± this share.")


ScorerName = Literal["exact", "contains", "numeric", "choice", "regex", "f1", "rouge_l", "json", "embedding", "judge"]


class JudgeSettings(StrictModel):
    """An LLM judge: another target grades each reply against a rubric."""

    target: str = Field(description="Name of the target that judges (one of `targets`).")
    rubric: str = Field(
        default="The reply is correct if it gives the same final answer as the reference, "
        "even when worded differently; extra explanation is fine; a different or missing answer is incorrect.",
        min_length=10,
    )
    retries: int = Field(default=2, ge=0, le=10, description="Re-asks when the verdict cannot be parsed.")
    max_tokens: int = Field(default=256, ge=16)


class SuiteConfig(StrictModel):
    """One evaluation suite: a dataset, how each item is asked, and how replies are scored."""

    name: str
    kind: Literal["quality"] = "quality"
    dataset: str = Field(description="gsm8k, mmlu-redux, mmlu, demo-qa, or a golden-set .jsonl/.csv path.")
    scorer: ScorerName = "exact"
    template: str | None = Field(default=None, description="Jinja2 prompt; default: the dataset's own.")
    system: str | None = None
    few_shot: int = Field(default=0, ge=0, le=20, description="Worked examples before the question.")
    limit: int | None = Field(default=None, ge=1, description="The first N items in dataset order.")
    sample: int | None = Field(default=None, ge=1, description="A seeded random N items.")
    seed: int = 0
    max_tokens: int = Field(default=512, ge=1)
    temperature: float | None = Field(default=0.0, ge=0, le=2)
    pattern: str | None = Field(default=None, description="For scorer regex; default: the expected answer.")
    json_schema: dict[str, Any] | None = Field(default=None, description="For scorer json.")
    threshold: float = Field(default=0.5, ge=0, le=1, description="Pass mark of graded scorers (f1, rouge_l).")
    include_flagged: bool = Field(default=False, description="MMLU-Redux: keep items flagged as erroneous.")
    embedding_model: str | None = Field(
        default=None, description="For scorer embedding: a local sentence-transformers folder (default: bundled)."
    )
    judge: JudgeSettings | None = None

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", v):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-'")
        return v

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {e}") from None
        return v

    @model_validator(mode="after")
    def _judge_when_judged(self) -> SuiteConfig:
        if self.scorer == "judge" and self.judge is None:
            raise PydanticCustomError(
                "missing_judge", "scorer judge needs a `judge:` block naming the judging target", {"at": ("scorer",)}
            )
        return self


AttackKind = Literal["harmful", "jailbreak", "injection", "leakage", "misinformation", "bias", "over_refusal"]
ATTACK_KINDS: tuple[str, ...] = AttackKind.__args__  # type: ignore[attr-defined]
Technique = Literal["template", "base64", "rot13", "leetspeak", "roleplay"]


class SafetySuite(StrictModel):
    """A red-team suite: one attack mechanism, on items of one dataset, reported as one category."""

    name: str
    kind: Literal["safety"]
    category: str = Field(description="Reported category; one of the attack kinds, or your own name with `attack`.")
    attack: AttackKind | None = Field(default=None, description="How items attack; default: the category.")
    dataset: str | None = Field(default=None, description="Built-in safety dataset or a .jsonl/.yaml attack set.")
    techniques: list[Technique] = Field(
        default_factory=lambda: list(Technique.__args__),  # type: ignore[attr-defined]
        description="jailbreak: how each request is wrapped, in turn.",
    )
    system: str | None = Field(default=None, description="The application's system prompt, sent with every item.")
    limit: int | None = Field(default=None, ge=1)
    sample: int | None = Field(default=None, ge=1, description="A seeded random N items.")
    seed: int = 0
    severity: int | None = Field(default=None, ge=1, le=5, description="Impact 1-5 for the risk matrix.")
    max_rate: float | None = Field(default=None, ge=0, le=1, description="Highest acceptable likelihood.")
    max_tokens: int = Field(default=256, ge=16)
    temperature: float | None = Field(default=0.0, ge=0, le=2)

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        return SuiteConfig._slug(v)

    @model_validator(mode="before")
    @classmethod
    def _attack_from_category(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("category") == "over_refusal":
            raise PydanticCustomError(
                "reserved",
                "category 'over_refusal' is the name of the over-refusal rate in reports; call the category "
                "something else (e.g. xstest) and set `attack: over_refusal`",
                {"at": ("category",)},
            )
        if isinstance(data, dict) and data.get("attack") is None and isinstance(data.get("category"), str):
            if data["category"] not in ATTACK_KINDS:
                raise PydanticCustomError(
                    "missing_attack",
                    "category '{c}' is not an attack kind; say how it attacks with `attack:` ({kinds})",
                    {"c": data["category"], "kinds": ", ".join(ATTACK_KINDS), "at": ("category",)},
                )
            data = {**data, "attack": data["category"]}
        return data

    @property
    def mechanism(self) -> str:
        """The attack kind (filled from the category when not given)."""
        return self.attack or self.category


def _suite_kind(v: Any) -> str:
    kind = v.get("kind", "quality") if isinstance(v, dict) else getattr(v, "kind", "quality")
    return kind if kind in ("quality", "safety") else "quality"  # an unknown kind fails on the quality model


AnySuite = Annotated[
    Annotated[SuiteConfig, Tag("quality")] | Annotated[SafetySuite, Tag("safety")], Discriminator(_suite_kind)
]
_SUITE_TAGS = ("quality", "safety")


class VendorEvidence(StrictModel):
    """What the vendor documents about safety, privacy and operations (checked, not measured)."""

    model_card: str | None = Field(default=None, description="URL of the model or system card.")
    content_filter: str | None = Field(default=None, description="Configurable content filtering, in a few words.")
    incident_response: str | None = Field(default=None, description="Incident notification terms.")
    certifications: list[str] = Field(default_factory=list, description="e.g. SOC 2 Type II, ISO 27001.")
    data_residency: list[str] = Field(default_factory=list, description="Regions where data can be kept.")
    retention_days: int | None = Field(default=None, ge=0, description="Days prompts and replies are kept.")
    trains_on_data: bool | None = Field(default=None, description="Whether the vendor trains on your traffic.")
    notes: str | None = None


class SafetyJudge(StrictModel):
    """An LLM judge that reviews replies to harmful and safe-but-scary prompts (suites/safety_judge.py)."""

    target: str = Field(description="Name of the target that judges (one of `targets`).")
    scope: Literal["undecided", "all"] = Field(
        default="undecided", description="Review what the phrase rules did not decide, or every such reply."
    )
    retries: int = Field(default=2, ge=0, le=10, description="Re-asks when the verdict cannot be parsed.")
    max_tokens: int = Field(default=200, ge=16)


class SafetySettings(StrictModel):
    """Red-team settings shared by every safety suite."""

    judge: SafetyJudge | None = Field(default=None, description="Optional LLM judge of refusals and harm.")
    severity: dict[str, int] = Field(default_factory=dict, description="Impact 1-5 per category.")
    max_rate: dict[str, float] = Field(default_factory=dict, description="Highest acceptable likelihood per category.")
    max_over_refusal: float = Field(default=0.1, ge=0, le=1)
    evidence: dict[str, VendorEvidence] = Field(default_factory=dict, description="Per target name.")
    required_evidence: list[str] = Field(
        default_factory=lambda: ["model_card", "content_filter", "incident_response", "certifications",
                                 "data_residency", "retention_days"],
        description="Fields a vendor must document; missing ones are flagged as gaps.",
    )  # fmt: skip

    @field_validator("severity")
    @classmethod
    def _severity_range(cls, v: dict[str, int]) -> dict[str, int]:
        for k, x in v.items():
            if not 1 <= x <= 5:
                raise PydanticCustomError("severity", "severity of '{k}' must be 1-5", {"k": k, "at": (k,)})
        return v

    @field_validator("max_rate")
    @classmethod
    def _rate_range(cls, v: dict[str, float]) -> dict[str, float]:
        for k, x in v.items():
            if not 0 <= x <= 1:
                raise PydanticCustomError("rate", "max_rate of '{k}' must be a share 0-1", {"k": k, "at": (k,)})
        return v


class ProjectConfig(StrictModel):
    """The whole `assay.yaml`. Later capabilities add their own sections here."""

    targets: list[Target] = Field(min_length=1)
    probe: ProbeSettings = Field(default_factory=ProbeSettings)
    slo: SLO = Field(default_factory=SLO)
    workload: Workload | None = None
    constraints: Constraints = Field(default_factory=Constraints)
    tco: TcoSettings = Field(default_factory=TcoSettings)
    suites: list[AnySuite] = Field(default_factory=list)
    safety: SafetySettings = Field(default_factory=SafetySettings)

    @field_validator("suites")
    @classmethod
    def _unique_suites(cls, suites: list[SuiteConfig | SafetySuite]) -> list[SuiteConfig | SafetySuite]:
        seen: dict[str, int] = {}
        for i, s in enumerate(suites):
            if s.name in seen:
                raise PydanticCustomError(
                    "duplicate_name",
                    "'{name}' is already the name of suites[{first}]; suite names must be unique",
                    {"name": s.name, "first": seen[s.name], "at": (i, "name")},
                )
            seen[s.name] = i
        return suites

    @model_validator(mode="after")
    def _judges_are_targets(self) -> ProjectConfig:
        names = {t.name for t in self.targets}
        for i, s in enumerate(self.suites):
            if isinstance(s, SuiteConfig) and s.judge is not None and s.judge.target not in names:
                raise PydanticCustomError(
                    "unknown_target",
                    "judge target '{name}' is not one of the targets ({known})",
                    {"name": s.judge.target, "known": ", ".join(sorted(names)), "at": ("suites", i, "judge", "target")},
                )
        judge = self.safety.judge
        if judge is not None and judge.target not in names:
            raise PydanticCustomError(
                "unknown_target",
                "judge target '{name}' is not one of the targets ({known})",
                {"name": judge.target, "known": ", ".join(sorted(names)), "at": ("safety", "judge", "target")},
            )
        return self

    @property
    def quality_suites(self) -> list[SuiteConfig]:
        return [s for s in self.suites if isinstance(s, SuiteConfig)]

    @property
    def safety_suites(self) -> list[SafetySuite]:
        return [s for s in self.suites if isinstance(s, SafetySuite)]

    def suite(self, name: str) -> SuiteConfig:
        """A quality suite by name."""
        for s in self.quality_suites:
            if s.name == name:
                return s
        if any(s.name == name for s in self.safety_suites):
            raise ConfigError(f"suite {name!r} is a safety suite; run it with `assay redteam`")
        known = ", ".join(s.name for s in self.quality_suites) or "none (add `suites:` to the config)"
        raise ConfigError(f"no suite named {name!r}; the config has: {known}")

    def safety_suite(self, name: str) -> SafetySuite:
        for s in self.safety_suites:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.safety_suites) or "none (the built-in red-team suites run then)"
        raise ConfigError(f"no safety suite named {name!r}; the config has: {known}")

    @field_validator("targets")
    @classmethod
    def _unique_names(cls, targets: list[Target]) -> list[Target]:
        first: dict[str, int] = {}
        for i, t in enumerate(targets):
            if t.name in first:
                # `at` points below this field's own location, so the error names the second use's line.
                raise PydanticCustomError(
                    "duplicate_name",
                    "'{name}' is already the name of targets[{first}]; target names must be unique",
                    {"name": t.name, "first": first[t.name], "at": (i, "name")},
                )
            first[t.name] = i
        return targets

    def target(self, name: str) -> Target:
        for t in self.targets:
            if t.name == name:
                return t
        raise ConfigError(f"no target named {name!r}; the config has: {', '.join(t.name for t in self.targets)}")


def state_dir() -> Path:
    """Where runs are stored: `$ASSAY_HOME`, else `.assay` in the working directory."""
    return Path(os.environ.get("ASSAY_HOME", ".assay"))


def example_config_text() -> str:
    return resources.files("assay").joinpath("example_config.yaml").read_text(encoding="utf-8")


def load_config(path: str | Path, checks: Sequence[Check] = ()) -> ProjectConfig:
    """Read and validate a project file; raise ConfigError listing every problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file (create one with `assay init`)") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror}") from None
    return parse_config(text, source=str(p), checks=checks)


def parse_config(text: str, source: str = "<config>", checks: Sequence[Check] = ()) -> ProjectConfig:
    expected = "a mapping with a `targets:` list"
    return parse_yaml_model(text, source, ProjectConfig, expected, "docs/CONFIG.md", checks)


M = TypeVar("M", bound=BaseModel)


def parse_yaml_model(
    text: str,
    source: str,
    model: type[M],
    expected: str,
    reference: str,
    checks: Sequence[Callable[[M], list[tuple[tuple[Any, ...], str]]]] = (),
) -> M:
    """Validate YAML text as `model`; raise ConfigError with every problem as `source:line: field: message`.

    `checks` run on the validated model and report the same way, so a problem found
    by a lower layer (a price missing from the catalog) still points at its line.
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
        problems = [_describe(err, lines, source, reference) for err in e.errors()]
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems) from None
    found = [(loc, msg) for check in checks for loc, msg in check(validated)]
    if found:
        errors = [{"loc": loc, "type": "check", "msg": msg} for loc, msg in found]
        problems = [_describe(err, lines, source, reference) for err in errors]
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems)
    return validated


def missing_key_envs(config: ProjectConfig, names: Iterable[str] | None = None) -> list[str]:
    """Targets whose `api_key_env` is not set in the environment, as messages."""
    wanted = set(names) if names is not None else None
    return [
        f"target {t.name!r}: environment variable {t.api_key_env} is not set"
        for t in config.targets
        if t.api_key_env and (wanted is None or t.name in wanted) and not os.environ.get(t.api_key_env)
    ]


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


def _describe(err: Any, lines: dict[tuple[Any, ...], int], source: str, reference: str) -> str:
    loc = (*err["loc"], *(err.get("ctx") or {}).get("at", ()))  # a validator may point inside its field
    # A tagged union (suites) adds its tag to `loc`; the file has no such key.
    loc = tuple(p for i, p in enumerate(loc) if not (p in _SUITE_TAGS and i and isinstance(loc[i - 1], int)))
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
