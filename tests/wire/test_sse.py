"""The SSE decoder, on the streams the protocols' server halves really send, split every way."""

from __future__ import annotations

import pytest

from assay.model import Usage
from assay.wire import PROTOCOLS, Finish, SSEDecoder, SSEEvent


def real_stream(api: str, broken: bool = False) -> bytes:
    """What a server half sends for a short answer (or one that fails mid-stream)."""
    enc = PROTOCOLS[api].stream_encoder("rid-1", "m", include_usage=True)
    out = enc.start(12) + enc.text("Hello") + enc.text(" wörld, ") + enc.text("«ok»")
    if broken:
        return out + enc.error("Overloaded.", "overloaded_error")
    return out + enc.close(Finish("length"), Usage(12, 3))


def decode(chunks: list[bytes]) -> list[tuple[str | None, bytes, int]]:
    d = SSEDecoder()
    events: list[SSEEvent] = []
    for c in chunks:
        events += d.feed(c)
    events += d.close()
    return [(e.event, e.data, e.end) for e in events]


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("broken", [False, True])
def test_every_split_gives_the_same_events_and_ends(api: str, broken: bool) -> None:
    stream = real_stream(api, broken)
    whole = decode([stream])
    ends = [i + 2 for i in range(len(stream)) if stream[i : i + 2] == b"\n\n"]
    assert [end for *_, end in whole] == ends
    assert decode([stream[i : i + 1] for i in range(len(stream))]) == whole
    for cut in range(1, len(stream)):
        assert decode([stream[:cut], stream[cut:]]) == whole, cut


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_crlf_and_cr_line_endings(api: str) -> None:
    stream = real_stream(api)
    want = [(name, data) for name, data, _ in decode([stream])]
    for newline in (b"\r\n", b"\r"):
        other = stream.replace(b"\n", newline)
        got = decode([other[i : i + 3] for i in range(0, len(other), 3)])
        assert [(name, data) for name, data, _ in got] == want
        blank = newline * 2
        assert [end for *_, end in got] == [i + len(blank) for i in range(len(other)) if other[i:].startswith(blank)]


def test_comments_multiline_data_and_a_last_event_without_its_blank_line() -> None:
    stream = b": keep-alive\n\nevent: note\ndata: one\ndata: two\n\nid: 7\nretry: 10\n\ndata:no-space\n\ndata: [DONE]\n"

    def end(marker: bytes) -> int:
        return stream.index(marker) + len(marker)

    assert decode([stream]) == [
        ("note", b"one\ntwo", end(b"two\n\n")),
        (None, b"no-space", end(b"no-space\n\n")),
        (None, b"[DONE]", len(stream)),
    ]
    assert decode([b"data: cut off"]) == []  # an incomplete line is not an event
