"""Virtual keys: hashed at rest, compared in constant time; per-key RPM/TPM limits and USD budgets.

Budgets are reserve-then-settle: before a request goes upstream it reserves its
worst case (its input estimate and `max_tokens` at the dearest rates of its route),
and is refused if spend plus reservations would pass the budget; when it ends the
reservation is replaced by what its attempts cost. Check and reserve happen in one
synchronous step on the event loop, so no two requests can both see the same
headroom (LiteLLM #34732: check-then-increment across an await). Overshoot is then
bounded by what in-flight requests spend beyond their reservation (attempts beyond
the first), which is at most the requests in flight when the budget ran out.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from assay.config import VirtualKey
from assay.errors import ConfigError

__all__ = ["KeyRing", "KeyState", "Refusal", "hash_key"]


def hash_key(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


@dataclass(slots=True)
class _Bucket:
    """A token bucket refilled continuously: `per_min` a minute, holding at most that many."""

    per_min: float
    level: float
    at_s: float

    def take(self, n: float, now_s: float) -> float:
        """Take `n` and return 0, or take nothing and return the seconds until `n` would be there."""
        self.level = min(self.per_min, self.level + (now_s - self.at_s) * self.per_min / 60.0)
        self.at_s = now_s
        if n <= self.level:
            self.level -= n
            return 0.0
        need = min(n, self.per_min) - self.level
        return need * 60.0 / self.per_min

    def give_back(self, n: float) -> None:
        self.level = min(self.per_min, self.level + n)


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    message: str
    type: str
    retry_after_s: float | None = None


@dataclass(slots=True)
class KeyState:
    config: VirtualKey
    digest: bytes
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    requests: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    rpm: _Bucket | None = None
    tpm: _Bucket | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def admit(self, route: str, tokens: int, worst_usd: float, now_s: float) -> Refusal | None:
        """Check routes, limits and budget, and reserve, in one step (no await in between)."""
        c = self.config
        if c.routes is not None and route not in c.routes:
            return self._refuse("route", Refusal(403, f"key {c.name!r} may not use model {route!r}; it may use: "
                                                      f"{', '.join(c.routes)}", "permission_error"))  # fmt: skip
        if c.budget_usd is not None and self.spent_usd + self.reserved_usd + worst_usd > c.budget_usd:
            left = max(0.0, c.budget_usd - self.spent_usd)
            return self._refuse("budget", Refusal(
                429, f"key {c.name!r} has spent ${self.spent_usd:.6f} of its ${c.budget_usd:g} budget "
                     f"(${left:.6f} left, ${self.reserved_usd:.6f} reserved by requests in flight)",
                "insufficient_quota"))  # fmt: skip
        if self.rpm is not None and (wait := self.rpm.take(1, now_s)):
            return self._refuse("rpm", Refusal(429, f"key {c.name!r}: over {c.rpm} requests per minute",
                                               "rate_limit_exceeded", wait))  # fmt: skip
        if self.tpm is not None and (wait := self.tpm.take(tokens, now_s)):
            if self.rpm is not None:
                self.rpm.give_back(1)
            return self._refuse("tpm", Refusal(429, f"key {c.name!r}: over {c.tpm} tokens per minute",
                                               "rate_limit_exceeded", wait))  # fmt: skip
        self.reserved_usd += worst_usd
        self.requests += 1
        return None

    def settle(self, reserved_usd: float, cost_usd: float) -> None:
        self.reserved_usd = max(0.0, self.reserved_usd - reserved_usd)
        self.spent_usd += cost_usd

    def _refuse(self, why: str, refusal: Refusal) -> Refusal:
        self.refused[why] = self.refused.get(why, 0) + 1
        return refusal

    def view(self) -> dict[str, object]:
        c = self.config
        return {"name": c.name, "budget_usd": c.budget_usd, "spent_usd": self.spent_usd,
                "reserved_usd": self.reserved_usd, "rpm": c.rpm, "tpm": c.tpm, "requests": self.requests,
                "refused": dict(self.refused), "routes": c.routes}  # fmt: skip


class KeyRing:
    """The configured keys, by hash. Empty: the gateway is open (and then binds to loopback only)."""

    def __init__(self, keys: Iterable[VirtualKey], now_s: float, env: Mapping[str, str] | None = None,
                 previous: KeyRing | None = None) -> None:  # fmt: skip
        env = os.environ if env is None else env
        self.keys: list[KeyState] = []
        missing = [f"gateway key {k.name!r}: environment variable {k.key_env} is not set" for k in keys
                   if not env.get(k.key_env)]  # fmt: skip
        if missing:
            raise ConfigError("cannot start the gateway: key values missing", missing)
        old = {k.name: k for k in previous.keys} if previous is not None else {}
        for k in keys:
            state = KeyState(k, hash_key(env[k.key_env]))
            if (before := old.get(k.name)) is not None:  # a reload keeps what was spent and reserved
                state.spent_usd, state.reserved_usd = before.spent_usd, before.reserved_usd
                state.requests, state.refused = before.requests, before.refused
            state.rpm = _Bucket(k.rpm, k.rpm, now_s) if k.rpm else None
            state.tpm = _Bucket(k.tpm, k.tpm, now_s) if k.tpm else None
            self.keys.append(state)
        digests = [k.digest for k in self.keys]
        if len(set(digests)) != len(digests):
            raise ConfigError("cannot start the gateway: two gateway keys have the same value")

    @property
    def open(self) -> bool:
        return not self.keys

    def find(self, presented: str | None) -> KeyState | None:
        """The key whose hash matches, comparing every key's hash in constant time."""
        if presented is None:
            return None
        digest = hash_key(presented)
        found: KeyState | None = None
        for k in self.keys:
            if hmac.compare_digest(k.digest, digest):
                found = k
        return found
