"""Talk to `assay gateway serve -c examples/gateway.yaml --port 8080` with the OpenAI and Anthropic SDKs.

    python examples/gateway_client.py [http://127.0.0.1:8080]
"""

from __future__ import annotations

import sys
from collections import Counter

import anthropic
import openai

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
oa = openai.OpenAI(base_url=url + "/v1", api_key="unused-without-gateway-keys", max_retries=0)

# Streaming through the fallback route: the header names the target that served the answer.
raw = oa.chat.completions.with_raw_response.create(
    model="chat", stream=True, messages=[{"role": "user", "content": "Why is the sky blue?"}]
)
text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
print(f"chat, served by {raw.headers['x-assay-target']}: {text[:60]}...")

# Fifty short requests: the flaky vendor's failures are absorbed by the fallbacks.
served: Counter[str] = Counter()
for _ in range(50):
    r = oa.chat.completions.with_raw_response.create(
        model="chat", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
    )
    served[r.headers["x-assay-target"]] += 1
print("50 requests to chat:", dict(served))

# An Anthropic client can use any route, and an OpenAI one any target: the gateway translates.
claude = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)
msg = claude.messages.create(model="fast", max_tokens=64, messages=[{"role": "user", "content": "hello"}])
print(f"fast, via the Anthropic SDK, answered by model {msg.model}: {msg.content[0].text[:40]}...")  # type: ignore[union-attr]
