"""One wire layer per protocol: request and answer bodies and SSE, the client half and the server half.

    PROTOCOLS["openai"].request_body(request, model)     # client half: what to send
    PROTOCOLS["openai"].stream_decoder().decode(sse)     # ... and what came back, as neutral events
    PROTOCOLS["anthropic"].parse_request(body)           # server half: what a client asked
    PROTOCOLS["anthropic"].stream_encoder(...).encode(e) # ... and the answer, from neutral events

A new protocol is a `Wire` subclass in a module of its own, registered here by
its API kind (the `api` of `assay.model.Target`).
"""

from assay.wire.anthropic import ANTHROPIC, ANTHROPIC_VERSION, JSON_TOOL, AnthropicWire
from assay.wire.events import (
    DONE,
    FINISH_REASONS,
    Choice,
    Collector,
    Done,
    ErrorEvent,
    Event,
    Finish,
    FinishReason,
    Start,
    TextDelta,
    ToolCallDelta,
    UsageReport,
    finish_from,
    spell_finish,
)
from assay.wire.openai import OPENAI, OpenAIWire
from assay.wire.protocol import (
    HARMLESS_EXTRAS,
    Incoming,
    StreamDecoder,
    StreamEncoder,
    Wire,
    content_pieces,
    decode_error,
)
from assay.wire.sse import DONE_EVENT, SSEDecoder, SSEEvent, encode_sse

__all__ = [
    "ANTHROPIC",
    "ANTHROPIC_VERSION",
    "DONE",
    "DONE_EVENT",
    "FINISH_REASONS",
    "HARMLESS_EXTRAS",
    "JSON_TOOL",
    "OPENAI",
    "PROTOCOLS",
    "AnthropicWire",
    "Choice",
    "Collector",
    "Done",
    "ErrorEvent",
    "Event",
    "Finish",
    "FinishReason",
    "Incoming",
    "OpenAIWire",
    "SSEDecoder",
    "SSEEvent",
    "Start",
    "StreamDecoder",
    "StreamEncoder",
    "TextDelta",
    "ToolCallDelta",
    "UsageReport",
    "Wire",
    "content_pieces",
    "decode_error",
    "encode_sse",
    "finish_from",
    "spell_finish",
]

PROTOCOLS: dict[str, Wire] = {OPENAI.api: OPENAI, ANTHROPIC.api: ANTHROPIC}
