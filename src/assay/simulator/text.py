"""Deterministic filler text: one word per simulated token."""

from __future__ import annotations

import random

__all__ = ["words"]

_VOCAB = (  # noqa: SIM905 - a sentence reads better than a list of 60 strings
    "the light from the sun scatters off molecules in the air and shorter blue wavelengths scatter "
    "more strongly than red ones so the sky looks blue during the day while at sunset light travels "
    "through more air and the blue is scattered away leaving warm colours near the horizon this is "
    "called rayleigh scattering and it depends on the inverse fourth power of wavelength"
).split()


def words(rng: random.Random, n: int) -> list[str]:
    """`n` tokens of plausible text; every token but the first starts with a space."""
    start = rng.randrange(len(_VOCAB))
    out = [_VOCAB[(start + i) % len(_VOCAB)] for i in range(n)]
    return [w if i == 0 else " " + w for i, w in enumerate(out)]
