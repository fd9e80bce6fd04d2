"""The project file (`assay.yaml`): one module per section, and loading with errors that point at lines.

Every section is a `StrictModel`, so a misspelt key is an error, not a silent
default. `load_config` reports *every* problem at once, each with the file,
the line, the field path and what was expected. A new feature adds its section
as a module here and a field on `ProjectConfig`.
"""

from assay.config.economics import Constraints, TcoSettings, Workload
from assay.config.gateway import POLICY_NAMES, BreakerSettings, GatewaySettings, Route, VirtualKey
from assay.config.loading import Problem, parse_yaml_model, read_text
from assay.config.probe import ProbeSettings
from assay.config.project import (
    SUITE_TAGS,
    AnySuite,
    Check,
    ProjectConfig,
    example_config_text,
    load_config,
    missing_key_envs,
    parse_config,
    state_dir,
)
from assay.config.quality import JudgeSettings, SuiteConfig, slug
from assay.config.safety import (
    ATTACK_KINDS,
    MULTI_TURN,
    AttackKind,
    SafetyJudge,
    SafetySettings,
    SafetySuite,
    Technique,
    VendorEvidence,
)
from assay.config.slo import LATENCY_KEYS, SLO
from assay.config.timeouts import TIMEOUT_KEYS, TimeoutSettings, effective_timeouts

__all__ = [
    "ATTACK_KINDS",
    "LATENCY_KEYS",
    "MULTI_TURN",
    "POLICY_NAMES",
    "SLO",
    "SUITE_TAGS",
    "TIMEOUT_KEYS",
    "AnySuite",
    "AttackKind",
    "BreakerSettings",
    "Check",
    "Constraints",
    "GatewaySettings",
    "JudgeSettings",
    "ProbeSettings",
    "Problem",
    "ProjectConfig",
    "Route",
    "SafetyJudge",
    "SafetySettings",
    "SafetySuite",
    "SuiteConfig",
    "TcoSettings",
    "Technique",
    "TimeoutSettings",
    "VendorEvidence",
    "VirtualKey",
    "Workload",
    "effective_timeouts",
    "example_config_text",
    "load_config",
    "missing_key_envs",
    "parse_config",
    "parse_yaml_model",
    "read_text",
    "slug",
    "state_dir",
]
