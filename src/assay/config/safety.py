"""Red-team suites (`suites:` entries of kind `safety`) and `safety:` settings (docs/SAFETY.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from assay.config.quality import slug
from assay.model import StrictModel

__all__ = [
    "ATTACK_KINDS",
    "MULTI_TURN",
    "AttackKind",
    "SafetyJudge",
    "SafetySettings",
    "SafetySuite",
    "Technique",
    "VendorEvidence",
]


AttackKind = Literal[
    "harmful", "jailbreak", "injection", "leakage", "misinformation", "bias", "over_refusal", "crescendo", "pair"
]
ATTACK_KINDS: tuple[str, ...] = AttackKind.__args__  # type: ignore[attr-defined]
MULTI_TURN: frozenset[str] = frozenset({"crescendo", "pair"})  # a conversation per item, up to `turns` target turns
DEFAULT_TURNS = 5
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
    turns: int | None = Field(
        default=None, ge=1, le=50, description="crescendo, pair: the most target turns a conversation has (5)."
    )
    attacker: str | None = Field(
        default=None, description="crescendo (optional), pair (required): the target that writes the attacks."
    )

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        return slug(v)

    @model_validator(mode="after")
    def _multi_turn_keys(self) -> SafetySuite:
        kind = self.mechanism
        if kind not in MULTI_TURN:
            for key in ("turns", "attacker"):
                if getattr(self, key) is not None:
                    raise PydanticCustomError(
                        "multi_turn_only",
                        "`{key}` is for multi-turn attacks (attack: crescendo or pair), not {kind}",
                        {"key": key, "kind": kind, "at": (key,)},
                    )
        elif kind == "pair" and self.attacker is None:
            raise PydanticCustomError(
                "attacker_needed",
                "a pair attack needs `attacker:`, the target that rewrites each refused request",
                {"at": ("attack",) if "attack" in self.model_fields_set else ("category",)},
            )
        elif kind == "crescendo" and self.turn_budget < 2:
            raise PydanticCustomError(
                "turns", "a crescendo needs at least 2 turns (a benign opener, then the asks)", {"at": ("turns",)}
            )
        return self

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

    @property
    def turn_budget(self) -> int:
        """Multi-turn attacks: the most target turns of one conversation."""
        return self.turns or DEFAULT_TURNS


class VendorEvidence(StrictModel):
    """What the vendor documents about safety, privacy and operations (checked, not measured)."""

    model_card: str | None = Field(default=None, description="URL of the model or system card.")
    content_filter: str | None = Field(default=None, description="Configurable content filtering, in a few words.")
    incident_response: str | None = Field(default=None, description="Incident notification terms.")
    certifications: list[str] = Field(default_factory=list, description="e.g. SOC 2 Type II, ISO 27001.")
    data_residency: list[str] = Field(default_factory=list, description="Regions where data can be kept.")
    retention_days: int | None = Field(default=None, ge=0, description="Days prompts and replies are kept.")
    trains_on_data: bool | None = Field(default=None, description="Whether the vendor trains on your traffic.")
    fine_tuning: bool | None = Field(default=None, description="Whether the vendor offers fine-tuning of this model.")
    notes: str | None = None


class SafetyJudge(StrictModel):
    """An LLM judge that reviews replies to harmful and safe-but-scary prompts (suites/safety_judge.py)."""

    target: str = Field(description="Name of the target that judges (one of `targets`).")
    scope: Literal["undecided", "all"] = Field(
        default="undecided",
        description="Review what the refusal detector was unsure of (probability 0.2-0.8), or every such reply.",
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
