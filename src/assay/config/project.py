"""The whole project file: `ProjectConfig`, its loading, and where runs are stored."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import Discriminator, Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

from assay.config.decision import DecisionSettings, metric_problem
from assay.config.economics import Constraints, TcoSettings, Workload
from assay.config.gateway import GatewaySettings
from assay.config.loading import Problem, parse_yaml_model, read_text
from assay.config.probe import ProbeSettings
from assay.config.quality import SuiteConfig
from assay.config.safety import SafetySettings, SafetySuite
from assay.config.slo import SLO
from assay.config.timeouts import TimeoutSettings, effective_timeouts
from assay.errors import ConfigError
from assay.model import StrictModel, Target

__all__ = [
    "SUITE_TAGS",
    "AnySuite",
    "Check",
    "ProjectConfig",
    "example_config_text",
    "load_config",
    "missing_key_envs",
    "parse_config",
    "state_dir",
]

_Named = TypeVar("_Named", bound=SuiteConfig | SafetySuite | Target)


def _unique(items: list[_Named], field: str) -> list[_Named]:
    """Names must be unique; the error points at the second use's line (`at` is below the field's own)."""
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.name in first:
            raise PydanticCustomError(
                "duplicate_name",
                "'{name}' is already the name of {field}[{first}]; {what} names must be unique",
                {"name": item.name, "field": field, "first": first[item.name], "what": field.rstrip("s"),
                 "at": (i, "name")},
            )  # fmt: skip
        first[item.name] = i
    return items


# A check beyond the schema (e.g. "every target has a price"), run after validation.
Check = Callable[["ProjectConfig"], list[Problem]]


def _suite_kind(v: Any) -> str:
    kind = v.get("kind", "quality") if isinstance(v, dict) else getattr(v, "kind", "quality")
    return kind if kind in ("quality", "safety") else "quality"  # an unknown kind fails on the quality model


AnySuite = Annotated[
    Annotated[SuiteConfig, Tag("quality")] | Annotated[SafetySuite, Tag("safety")], Discriminator(_suite_kind)
]
SUITE_TAGS = frozenset({"quality", "safety"})


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
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    gateway: GatewaySettings | None = None
    decision: DecisionSettings | None = None

    @field_validator("suites")
    @classmethod
    def _unique_suites(cls, suites: list[SuiteConfig | SafetySuite]) -> list[SuiteConfig | SafetySuite]:
        return _unique(suites, "suites")

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
            if isinstance(s, SafetySuite) and s.attacker is not None and s.attacker not in names:
                raise PydanticCustomError(
                    "unknown_target",
                    "attacker '{name}' is not one of the targets ({known})",
                    {"name": s.attacker, "known": ", ".join(sorted(names)), "at": ("suites", i, "attacker")},
                )
        judge = self.safety.judge
        if judge is not None and judge.target not in names:
            raise PydanticCustomError(
                "unknown_target",
                "judge target '{name}' is not one of the targets ({known})",
                {"name": judge.target, "known": ", ".join(sorted(names)), "at": ("safety", "judge", "target")},
            )
        return self

    @model_validator(mode="after")
    def _routes_name_targets(self) -> ProjectConfig:
        if self.gateway is None:
            return self
        names = {t.name for t in self.targets}
        known = ", ".join(t.name for t in self.targets)
        for i, route in enumerate(self.gateway.routes):
            for j, name in enumerate(route.targets):
                if name not in names:
                    raise PydanticCustomError(
                        "unknown_target",
                        "route target '{name}' is not one of the targets ({known})",
                        {"name": name, "known": known, "at": ("gateway", "routes", i, "targets", j)},
                    )
        for j, name in enumerate(self.gateway.prefill_targets):
            if name not in names:
                raise PydanticCustomError(
                    "unknown_target",
                    "prefill target '{name}' is not one of the targets ({known})",
                    {"name": name, "known": known, "at": ("gateway", "prefill_targets", j)},
                )
        return self

    @model_validator(mode="after")
    def _decision_names(self) -> ProjectConfig:
        """The decision's suites, datum and chosen target exist; each problem at its own line."""
        d = self.decision
        if d is None:
            return self
        suites = [s.name for s in self.quality_suites]
        for i, c in enumerate(d.criteria):
            if c.metric.startswith("eval.") and (problem := metric_problem(c.metric, suites)):
                raise PydanticCustomError("unknown_metric", problem, {"at": ("decision", "criteria", i, "metric")})
        names = {t.name for t in self.targets}
        known = ", ".join(t.name for t in self.targets)
        for key in ("datum", "choose"):
            name = getattr(d, key)
            if name is not None and name not in names:
                raise PydanticCustomError(
                    "unknown_target",
                    "{key} '{name}' is not one of the targets ({known})",
                    {"key": key, "name": name, "known": known, "at": ("decision", key)},
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
        return _unique(targets, "targets")

    def timeouts_for(self, name: str, section: object = None, total_s: float | None = None) -> TimeoutSettings:
        """A target's effective timeouts: `timeouts:`, then a command's own section (e.g. `probe:`), then
        the target's own keys, then `total_s` from the command line (`--timeout`)."""
        return effective_timeouts(self.timeouts, section, self.target(name), {"timeout_s": total_s})  # type: ignore[arg-type]

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
    text = read_text(p, "file", " (create one with `assay init`)")
    return parse_config(text, source=str(p), checks=checks)


def parse_config(text: str, source: str = "<config>", checks: Sequence[Check] = ()) -> ProjectConfig:
    expected = "a mapping with a `targets:` list"
    return parse_yaml_model(text, source, ProjectConfig, expected, "docs/CONFIG.md", checks, SUITE_TAGS)


def missing_key_envs(config: ProjectConfig, names: Iterable[str] | None = None) -> list[str]:
    """Targets whose `api_key_env` is not set in the environment, as messages."""
    wanted = set(names) if names is not None else None
    return [
        f"target {t.name!r}: environment variable {t.api_key_env} is not set"
        for t in config.targets
        if t.api_key_env and (wanted is None or t.name in wanted) and not os.environ.get(t.api_key_env)
    ]
