"""Retry-After and rate-limit headers, in every form providers send them."""

from __future__ import annotations

import pytest

from assay.clients.errors import error_for_status, parse_duration_s, rate_limit_headers, retry_after_s

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500", "retry-after": "2"}, 1.5),  # the precise one wins
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:13:30 GMT"}, 10.0),  # HTTP date, 10 s after NOW
        ({"x-ratelimit-reset-requests": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-tokens": "20ms"}, 0.02),
        ({"anthropic-ratelimit-requests-reset": "2023-11-14T22:13:35Z"}, 15.0),
        ({"content-type": "application/json"}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], expected: float | None) -> None:
    got = retry_after_s(headers, now_wall_s=NOW)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_duration_parser_refuses_junk() -> None:
    assert parse_duration_s("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_duration_s("soon") is None
    assert parse_duration_s("5x") is None


def test_status_mapping_and_kept_headers() -> None:
    headers = {"x-ratelimit-remaining-requests": "0", "retry-after": "3", "server": "x"}
    e = error_for_status(429, headers, b'{"error": {"message": "slow down", "type": "rate_limit_exceeded"}}')
    assert e.error_class == "rate_limited" and e.retry_after_s == 3.0
    assert e.headers == {"x-ratelimit-remaining-requests": "0", "retry-after": "3"}
    assert e.message == "HTTP 429 rate_limit_exceeded: slow down"
    assert error_for_status(529, {}, b"").error_class == "overloaded"
    assert error_for_status(503, {}, b"<html>busy</html>").error_class == "overloaded"
    assert error_for_status(502, {}, b"").error_class == "server_error"
    assert error_for_status(401, {}, b'{"error": "bad key"}').error_class == "client_error"
    assert rate_limit_headers({"Anthropic-RateLimit-Tokens-Limit": "9"}) == {"anthropic-ratelimit-tokens-limit": "9"}


def test_proxies_come_from_the_environment_once_per_target(monkeypatch: pytest.MonkeyPatch) -> None:
    from assay.clients.transport import proxy_for

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.internal")
    assert proxy_for("https://api.openai.com/v1") == "http://proxy.corp:3128"
    assert proxy_for("http://127.0.0.1:8000/v1") is None
    assert proxy_for("https://llm.internal/v1") is None


def test_litellm_prefixed_headers_are_read_under_their_plain_names() -> None:
    """LiteLLM's proxy forwards the provider's headers as `llm_provider-<name>`; the plain name wins if both came."""
    assert retry_after_s({"llm_provider-retry-after": "7"}) == 7.0
    assert retry_after_s({"llm_provider-retry-after-ms": "1500", "llm_provider-retry-after": "2"}) == 1.5
    assert retry_after_s({"llm_provider-x-ratelimit-reset-requests": "6m0s"}) == 360.0
    assert retry_after_s({"LLM_Provider-Anthropic-RateLimit-Requests-Reset": "2023-11-14T22:13:35Z"}, NOW) == 15.0
    assert retry_after_s({"retry-after": "3", "llm_provider-retry-after": "9"}) == 3.0
    headers = {
        "llm_provider-x-ratelimit-remaining-requests": "0",
        "llm_provider-anthropic-ratelimit-tokens-limit": "9",
        "x-ratelimit-limit-requests": "60",
        "llm_provider-x-ratelimit-limit-requests": "50",
        "llm_provider-content-type": "application/json",
        "llm_provider-retry-after": "4",
    }
    assert rate_limit_headers(headers) == {
        "x-ratelimit-remaining-requests": "0",
        "anthropic-ratelimit-tokens-limit": "9",
        "x-ratelimit-limit-requests": "60",
        "retry-after": "4",
    }
    e = error_for_status(429, headers, b'{"error": {"message": "slow down", "type": "rate_limit_exceeded"}}')
    assert e.retry_after_s == 4.0 and e.headers["x-ratelimit-remaining-requests"] == "0"
