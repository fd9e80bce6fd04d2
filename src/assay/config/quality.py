"""Quality suites (`suites:` entries of kind `quality`) and their LLM judge.

`scorer` names an entry of the scorer registry (`assay.suites.scorers.SCORERS`);
the schema cannot see that registry (it sits in a higher layer), so the
command-line edge checks the name at the field's line (`scorer_problems`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from assay.model import NAME_RE, StrictModel

__all__ = ["JudgeSettings", "SuiteConfig", "slug"]


def slug(v: str) -> str:
    """A name for reports and the command line: 1-64 letters, digits, '.', '_' or '-'."""
    if not NAME_RE.match(v):
        raise ValueError("must be 1-64 letters, digits, '.', '_' or '-'")
    return v


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
    scorer: str = Field(default="exact", description="A scorer of the registry: `assay eval --list-scorers`.")
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
        return slug(v)

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
