"""The engine's fast path for whole messages, ``engine.deliver_messages``, or its compiled twin
``_reading.deliver_messages`` when built (the one the compiled pump calls), held to
``ClientConnection.next_event`` bytes in, bytes out: driven as the transport's pump drives
it (from the engine's buffer, or from a read in place), it hands over the same messages and
events, writes the same frames and ends in the same state."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import client_frames, server_frame, switching_protocols, texts, xor
from wsapi.protocol._build import compiled
from wsapi.protocol.engine import ClientConnection, State
from wsapi.protocol.engine import deliver_messages as python_deliver_messages
from wsapi.protocol.events import CloseReceived, Failed, Opened, PingReceived, PongReceived

deliver_messages = python_deliver_messages
if compiled("wsapi._reading"):
    from wsapi._reading import deliver_messages


READ_MODES = ("buffered", "pump", "in place")
"""How the property test hands a read to the compiled engine: only buffered (a pump is
scheduled already), buffered then pumped, or given to the pump, which passes it to
``deliver_messages`` (its ``data``) to read whole messages from it in place."""


def fail_on_report(exc: Exception) -> None:
    """A ``report_error`` for tests where no handler raises."""
    pytest.fail(f"a handler error was reported: {exc!r}")


# --- engine helpers --------------------------------------------------------------------------


def frame(
    first: int, payload: bytes = b"", *, form: str = "minimal", key: bytes | None = None
) -> bytes:
    """A server frame with the first byte ``first``, its length in the ``form`` "minimal",
    "16" or "64" (non-minimal encodings are legal to parse), masked with ``key`` if given."""
    n = len(payload)
    mask = 0x80 if key is not None else 0
    if form == "minimal":
        form = "7" if n < 126 else "16" if n < 65536 else "64"
    if form == "7":
        header = bytes([first, mask | n])
    elif form == "16":
        header = bytes([first, mask | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([first, mask | 127]) + n.to_bytes(8, "big")
    if key is not None:
        return header + key + xor(payload, key)
    return header + payload


def new_engine(max_message_size: int | None = 64 * 1024) -> tuple[ClientConnection, bytes]:
    """An engine whose request was taken, and the 101 response that opens it."""
    conn = ClientConnection("example.com", "/chat", max_message_size=max_message_size)
    request = b"".join(conn.data_to_send())
    return conn, switching_protocols(request)


def open_engine(max_message_size: int | None = 64 * 1024) -> ClientConnection:
    """An engine whose opening handshake completed (the Opened event consumed)."""
    conn, response = new_engine(max_message_size)
    conn.receive_data(response)
    assert isinstance(conn.next_event(), Opened)
    return conn


def normalized(event: object) -> object:
    """An event in a form that compares across engines: messages with their type, Failed by
    reason, kind and close code, Opened without its headers (the accept key differs)."""
    if type(event) is str:
        return ("text", event)
    if type(event) is bytes:
        return ("binary", event)
    if isinstance(event, Failed):
        return ("failed", event.reason, event.kind, event.close_code)
    if isinstance(event, Opened):
        return ("opened", event.protocol, event.extensions)
    return event


class Collector:
    """An ``on_message`` and a ``report_error`` that log into one list; ``on_message`` raises
    for the messages whose index is in ``raise_at``, and fails ``conn`` (as the layer above
    may) at the message whose index is ``fail_at``."""

    def __init__(
        self,
        raise_at: Iterable[int] = (),
        fail_at: int | None = None,
        conn: ClientConnection | None = None,
    ) -> None:
        self.log: list[object] = []
        self.count = 0
        self.raise_at = frozenset(raise_at)
        self.fail_at = fail_at
        self.conn = conn

    def on_message(self, data: str | bytes) -> None:
        index = self.count
        self.count += 1
        self.log.append(normalized(data))
        if index == self.fail_at and self.conn is not None:
            self.conn.fail(1008, "the handler failed it")
        if index in self.raise_at:
            raise ValueError(f"handler bug at message {index}")

    def report_error(self, exc: Exception) -> None:
        self.log.append(("reported", type(exc).__name__, str(exc)))


def drive_with_next_event(conn: ClientConnection, collector: Collector) -> None:
    """The reference: every event from ``next_event``, a message handed to the handler (its
    exception reported), until the engine needs more bytes."""
    while (event := conn.next_event()) is not None:
        if type(event) is str or type(event) is bytes:
            try:
                collector.on_message(event)
            except Exception as exc:
                collector.report_error(exc)
        else:
            collector.log.append(normalized(event))


def deliver_counted(
    conn: ClientConnection,
    collector: Collector,
    budget: int,
    data: bytes | memoryview | None = None,
) -> int:
    """``deliver_messages``, checking that it returns the number of calls it made."""
    assert deliver_messages is not None
    before = collector.count
    delivered = deliver_messages(conn, collector.on_message, collector.report_error, budget, data)
    assert 0 <= delivered <= budget
    assert collector.count - before == delivered, "the count returned is not the calls"
    return delivered


def drive_like_the_pump(
    conn: ClientConnection,
    collector: Collector,
    next_budget: Callable[[], int],
    data: bytes | memoryview | None = None,
) -> None:
    """``ConnectionPump._pump``'s loop with ``deliver_messages``, one callback after
    another with a budget each, until the engine needs more bytes; ``data``, bytes just
    read, go to the first callback (to ``deliver_messages`` itself, which reads whole
    messages from them in place)."""
    while True:
        budget = next_budget()
        if data is not None:
            budget -= deliver_counted(conn, collector, budget, data)
            data = None
        while budget > 0:
            budget -= deliver_counted(conn, collector, budget)
            if budget <= 0:
                break
            budget -= 1
            event = conn.next_event() if conn.may_have_events() else None
            if type(event) is str or type(event) is bytes:
                try:
                    collector.on_message(event)
                except Exception as exc:
                    collector.report_error(exc)
                continue
            if event is None:
                return
            collector.log.append(normalized(event))
            if isinstance(event, PingReceived | PongReceived):
                continue
            break


def engine_outcome(conn: ClientConnection) -> tuple[object, ...]:
    """The engine's state after the stream, comparable across engines."""
    return (
        conn.state,
        conn.close_sent,
        conn.close_received,
        normalized(conn.failure),
        conn.buffered,
    )


# --- strategies of server frames ---------------------------------------------------------------

INVALID_UTF8 = (
    b"\xed\xa0\x80",  # a UTF-16 surrogate, U+D800
    b"\xed\xbf\xbf",  # U+DFFF
    b"\xc0\xaf",  # overlong "/"
    b"\xe0\x80\xaf",  # overlong, 3 bytes
    b"\xf0\x80\x80\xaf",  # overlong, 4 bytes
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xff",
    b"\x80",  # a lone continuation byte
    b"\xe2\x82",  # truncated at the end of the message
)

SMALL_LIMIT = 200
"""The max_message_size the property test mostly uses: some messages exceed it."""

forms = st.sampled_from(("minimal", "minimal", "minimal", "7", "16", "64"))
valid_texts = st.text(max_size=40).map(str.encode)  # at most 160 bytes
invalid_texts = st.tuples(
    st.text(max_size=8), st.sampled_from(INVALID_UTF8), st.text(max_size=8)
).map(lambda t: t[0].encode() + t[1] + t[2].encode())
valid_binaries = st.one_of(
    st.binary(max_size=30),
    st.integers(120, SMALL_LIMIT).map(lambda n: bytes(i & 0xFF for i in range(n))),
)
too_big = st.integers(SMALL_LIMIT + 1, SMALL_LIMIT + 100)
too_big_texts = too_big.map(lambda n: b"t" * n)
too_big_binaries = too_big.map(lambda n: bytes(i & 0xFF for i in range(n)))


def fit_form(form: str, payload: bytes) -> str:
    """A length form that can hold ``payload``'s length (the 7-bit form holds < 126)."""
    return "16" if form == "7" and len(payload) >= 126 else form


def messages(
    texts: st.SearchStrategy[bytes], binaries: st.SearchStrategy[bytes]
) -> st.SearchStrategy[bytes]:
    """A text or binary message with a payload drawn from ``texts`` or ``binaries``, in one
    frame (mostly: the case the compiled path takes) or in 2-4 frames with Pings and Pongs
    maybe between them, each frame's length in any form."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        opcode = draw(st.sampled_from((0x1, 0x2)))
        payload = draw(texts if opcode == 0x1 else binaries)
        cuts: list[int] = []
        if draw(st.integers(0, 3)) == 0:
            cuts = sorted(draw(st.lists(st.integers(0, len(payload)), min_size=1, max_size=3)))
        pieces = [payload[a:b] for a, b in itertools.pairwise([0, *cuts, len(payload)])]
        stream = b""
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            first = (0x80 if last else 0) | (opcode if i == 0 else 0x0)
            stream += frame(first, piece, form=fit_form(draw(forms), piece))
            if not last and draw(st.booleans()):
                stream += draw(control_frames)
        return stream

    return build()


control_frames = st.one_of(
    st.binary(max_size=125).map(lambda p: frame(0x89, p)),
    st.binary(max_size=125).map(lambda p: frame(0x8A, p)),
)
close_frames = st.one_of(
    st.just(b""),
    st.tuples(st.sampled_from((1000, 1001, 1011, 3000, 4999)), st.text(max_size=20)).map(
        lambda t: t[0].to_bytes(2, "big") + t[1].encode()
    ),
    st.sampled_from((b"\x03", b"\x03\xe7", b"\x03\xed", b"\x03\xe8\xed\xa0\x80", b"\x03\xe8")),
).map(lambda body: frame(0x88, body))
violations = st.one_of(
    # RSV bits on a data or a control frame (no extension negotiated).
    st.tuples(st.sampled_from((0x40, 0x20, 0x10, 0x70)), st.sampled_from((0x1, 0x2, 0x9))).map(
        lambda t: frame(0x80 | t[0] | t[1], b"abc")
    ),
    # A masked data or control frame, with enough bytes behind it to be misread as a long
    # frame if its mask bit were taken for length.
    st.tuples(st.sampled_from((0x81, 0x82, 0x89)), st.binary(max_size=20)).map(
        lambda t: frame(t[0], t[1], key=b"\x01\x02\x03\x04") + frame(0x82, bytes(150))
    ),
    # Reserved opcodes.
    st.sampled_from((3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)).map(lambda op: frame(0x80 | op)),
    # A continuation frame that starts no message.
    st.just(frame(0x80, b"x")),
    # A 64-bit length with its most significant bit set.
    st.integers(0, 5).map(lambda n: b"\x82\x7f" + ((1 << 63) | n).to_bytes(8, "big") + b"x" * n),
    # Control frames over 125 bytes, or fragmented.
    st.just(frame(0x89, b"p" * 126)),
    st.just(frame(0x09, b"p")),
)
new_message_inside_a_fragmented_one = st.tuples(
    st.sampled_from((0x81, 0x82, 0x01)), st.sampled_from((b"", frame(0x89)))
).map(lambda t: frame(0x01, b"fr") + t[1] + frame(t[0], b"x"))
"""(After a Ping: an event between the two, where the compiled path gets its turn.)"""
good_frames = st.one_of(
    messages(valid_texts, valid_binaries),
    messages(valid_texts, valid_binaries),
    messages(valid_texts, valid_binaries),
    control_frames,
)
endings = st.one_of(
    st.just(b""),
    close_frames,
    violations,
    new_message_inside_a_fragmented_one,
    messages(invalid_texts, valid_binaries),
    messages(invalid_texts, too_big_binaries),
    messages(too_big_texts, too_big_binaries),
)
streams = st.tuples(
    st.lists(good_frames, max_size=10), endings, st.lists(good_frames, max_size=3)
).map(lambda t: [*t[0], t[1], *t[2]])
"""Valid frames, then maybe the end of the connection (a Close, a violation, invalid text,
a message over the limit), then more frames (ignored after that end)."""


# --- engine: equivalence with next_event ---------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(
    frames=streams,
    max_message_size=st.sampled_from((SMALL_LIMIT, SMALL_LIMIT, None)),
    end_of_stream=st.booleans(),
    raise_at=st.sets(st.integers(0, 12), max_size=3),
    fail_at=st.one_of(st.none(), st.none(), st.integers(0, 8)),
    data=st.data(),
)
def test_deliver_messages_is_next_event_for_any_stream(
    *,
    frames: list[bytes],
    max_message_size: int | None,
    end_of_stream: bool,
    raise_at: set[int],
    fail_at: int | None,
    data: st.DataObject,
) -> None:
    """Any stream of server frames, after the 101 and chunked anyhow: an engine driven as the
    transport drives it (each read buffered, pumped, or read in place by the pump;
    ``deliver_messages`` with random budgets, then ``next_event``) hands over the same
    messages, events and handler errors (its handler may raise, or fail the connection) in
    the same order, writes the same frames and ends in the same state as one driven by
    ``next_event`` alone."""
    reference, response_a = new_engine(max_message_size)
    compiled, response_b = new_engine(max_message_size)
    assert len(response_a) == len(response_b)
    body = b"".join(frames)
    total = len(response_a) + len(body)
    cuts = sorted(data.draw(st.lists(st.integers(0, total), max_size=12), label="cuts"))
    budgets = st.integers(1, 4)
    expected = Collector(raise_at, fail_at, reference)
    actual = Collector(raise_at, fail_at, compiled)
    sent_a: list[tuple[int, bytes]] = []
    sent_b: list[tuple[int, bytes]] = []

    def pump(read: bytes | memoryview | None = None) -> None:
        drive_like_the_pump(compiled, actual, lambda: data.draw(budgets, label="budget"), read)
        sent_b.extend(client_frames(b"".join(compiled.data_to_send())))

    start = 0
    for cut in [*cuts, total]:
        reference.receive_data((response_a + body)[start:cut])
        drive_with_next_event(reference, expected)
        sent_a += client_frames(b"".join(reference.data_to_send()))
        read = (response_b + body)[start:cut]
        start = cut
        mode = data.draw(st.sampled_from(READ_MODES), label="read")
        if mode == "buffered":
            # A pump is already scheduled: the read is only buffered for it.
            compiled.receive_data(read)
            continue
        if mode == "pump":
            compiled.receive_data(read)
            pump()
        else:
            # The transport hands its read buffer over, then reuses it for the next read.
            scratch = bytearray(read)
            pump(memoryview(scratch))
            scratch[:] = b"\xff" * len(scratch)
        assert actual.log == expected.log
    pump()
    if end_of_stream:
        reference.receive_eof()
        compiled.receive_eof()
        drive_with_next_event(reference, expected)
        sent_a += client_frames(b"".join(reference.data_to_send()))
        pump()
    assert actual.log == expected.log
    assert sent_b == sent_a
    assert engine_outcome(compiled) == engine_outcome(reference)


STOPPER_LIMIT = 1000
"""The max_message_size of the stopper tests: large enough that a misread header (a mask bit
taken for length) would find a frame's worth of bytes behind it."""

STOPPERS = {
    "ping": frame(0x89, b"hi"),
    "pong": frame(0x8A, b"ho"),
    "close-with-body": frame(0x88, b"\x03\xe8bye"),
    "close-empty": frame(0x88),
    "first-fragment": frame(0x01, b"fra") + frame(0x80, b"g"),
    "rsv1": frame(0xC1, b"abc"),
    "rsv3": frame(0x92, b"abc"),
    "masked": frame(0x81, b"abc", key=b"\x0a\x0b\x0c\x0d"),
    "masked-16-bit": frame(0x82, bytes(130), key=b"\x0a\x0b\x0c\x0d"),
    "reserved-opcode": frame(0x83, b"abc"),
    "continuation": frame(0x80, b"abc"),
    "surrogate": frame(0x81, b"a\xed\xa0\x80"),
    "overlong": frame(0x81, b"\xc0\xaf"),
    "too-big": frame(0x82, bytes(STOPPER_LIMIT + 1)),
    "too-big-text": frame(0x81, b"t" * (STOPPER_LIMIT + 1)),
    "too-big-64-bit-form": frame(0x82, bytes(STOPPER_LIMIT + 1), form="64"),
    "length-high-bit": b"\x81\x7f" + (1 << 63).to_bytes(8, "big") + b"abc",
    "incomplete": frame(0x82, bytes(40))[:-1],
    "incomplete-text": frame(0x81, "\u00e9".encode() * 20)[:-3],
    "incomplete-header": b"\x82\x7e\x00",
}
INCOMPLETE = {STOPPERS[name] for name in ("incomplete", "incomplete-text", "incomplete-header")}


@pytest.mark.parametrize("stopper", STOPPERS.values(), ids=STOPPERS.keys())
def test_deliver_messages_stops_at_anything_else(stopper: bytes) -> None:
    """The compiled path delivers the whole messages before a frame it does not handle and
    leaves that frame to ``next_event``, whose treatment is the reference's."""
    assert deliver_messages is not None
    head = frame(0x81, b"one") + frame(0x82, b"\x00\x02", form="64") + frame(0x81, b"", form="16")
    # After an incomplete frame, more bytes would complete it: nothing follows it.
    tail = b"" if stopper in INCOMPLETE else texts(*(f"after {i}" for i in range(50)))
    collector = Collector()
    compiled = open_engine(max_message_size=STOPPER_LIMIT)
    compiled.receive_data(head + stopper + tail)
    assert deliver_messages(compiled, collector.on_message, collector.report_error, 100) == 3
    assert collector.log == [("text", "one"), ("binary", b"\x00\x02"), ("text", "")]
    # Nothing more until next_event has taken the frame at the head of the buffer.
    assert deliver_messages(compiled, collector.on_message, collector.report_error, 100) == 0
    assert compiled.buffered == len(stopper + tail)
    reference = open_engine(max_message_size=STOPPER_LIMIT)
    reference.receive_data(stopper + tail)
    expected = Collector()
    drive_with_next_event(reference, expected)
    drive_like_the_pump(compiled, collector, lambda: 100)
    assert collector.log[3:] == expected.log
    assert client_frames(b"".join(compiled.data_to_send())) == client_frames(
        b"".join(reference.data_to_send())
    )
    assert engine_outcome(compiled) == engine_outcome(reference)


def test_deliver_messages_respects_the_limit_exactly() -> None:
    """At most ``limit`` messages per call, the rest left in the buffer in order; a limit of
    0 delivers nothing."""
    assert deliver_messages is not None
    conn = open_engine()
    messages = [f"m{i}" for i in range(7)]
    tail = frame(0x82, b"incomplete")[:-3]
    conn.receive_data(b"".join(frame(0x81, m.encode()) for m in messages) + tail)
    collector = Collector()
    calls = (collector.on_message, collector.report_error)
    assert deliver_messages(conn, *calls, 0) == 0
    assert collector.log == []
    assert deliver_messages(conn, *calls, 1) == 1
    assert deliver_messages(conn, *calls, 3) == 3
    assert collector.log == [("text", m) for m in messages[:4]]
    assert deliver_messages(conn, *calls, 10) == 3
    assert collector.log == [("text", m) for m in messages]
    assert conn.buffered == len(tail)
    assert deliver_messages(conn, *calls, 10) == 0
    conn.receive_data(b"ete")
    assert deliver_messages(conn, *calls, 10) == 1
    assert collector.log[-1] == ("binary", b"incomplete")
    assert conn.buffered == 0
    assert conn.next_event() is None


def test_handler_exception_is_reported_and_the_next_message_follows() -> None:
    """What ``on_message`` raises goes to ``report_error`` (the same exception object), and
    the batch goes on with the next message."""
    assert deliver_messages is not None
    conn = open_engine()
    conn.receive_data(frame(0x81, b"a") + frame(0x81, b"b") + frame(0x82, b"c"))
    seen: list[object] = []
    reported: list[Exception] = []
    bug = ValueError("handler bug")

    def on_message(data: str | bytes) -> None:
        seen.append(data)
        if data == "a":
            raise bug

    assert deliver_messages(conn, on_message, reported.append, 10) == 3
    assert seen == ["a", "b", b"c"]
    assert reported == [bug]
    assert reported[0] is bug


def failing_at(
    trigger: str, conn: ClientConnection, seen: list[object]
) -> Callable[[str | bytes], None]:
    """An on_message that logs into ``seen`` and fails ``conn`` at the message ``trigger``."""

    def on_message(data: str | bytes) -> None:
        seen.append(data)
        if data == trigger:
            conn.fail(1008, "policy")

    return on_message


def test_fail_inside_on_message_stops_the_batch() -> None:
    """``engine.fail()`` from inside ``on_message`` (the layer above failing the connection)
    ends the batch at once: the Failed event is the next event, its Close frame is written,
    and no later message is handed over, as with ``next_event``."""
    assert deliver_messages is not None
    results = []
    for use_compiled in (False, True):
        conn = open_engine()
        conn.receive_data(b"".join(frame(0x81, str(i).encode()) for i in range(5)))
        seen: list[object] = []
        on_message = failing_at("1", conn, seen)
        if use_compiled:
            assert deliver_messages(conn, on_message, fail_on_report, 10) == 2
        else:
            for _ in range(2):
                event = conn.next_event()
                assert type(event) is str
                on_message(event)
        assert seen == ["0", "1"]
        failed = conn.next_event()
        assert isinstance(failed, Failed)
        assert (failed.reason, failed.kind, failed.close_code) == ("policy", "local", 1008)
        assert conn.next_event() is None
        if use_compiled:
            assert deliver_messages(conn, on_message, fail_on_report, 10) == 0
        assert seen == ["0", "1"]
        results.append(client_frames(b"".join(conn.data_to_send())))
    assert results[0] == results[1] == [(0x88, (1008).to_bytes(2, "big"))]


def test_text_frame_partly_validated_is_left_to_next_event() -> None:
    """A text frame whose first part ``next_event`` validated as it arrived (Rule 4) is
    finished by ``next_event`` when the rest comes, so that the next message, a fragmented
    one with invalid UTF-8 in its first bytes, still fails with 1007."""
    assert deliver_messages is not None
    conn = open_engine()
    collector = Collector()
    whole = frame(0x81, b"abcdef")
    conn.receive_data(whole[:-3])
    assert conn.next_event() is None
    conn.receive_data(whole[-3:] + frame(0x01, b"\xff\xfe\xfd") + frame(0x80, b"z"))
    drive_like_the_pump(conn, collector, lambda: 10)
    assert collector.log == [
        ("text", "abcdef"),
        ("failed", "a text message is not UTF-8", "protocol", 1007),
    ]


def test_deliver_messages_reads_whole_messages_in_place() -> None:
    """With ``data`` (a read, in a buffer the transport reuses), whole messages are handed
    over from it, up to the limit, behind what the engine had buffered; the rest is copied
    into the engine, so that reusing the read buffer changes nothing."""
    assert deliver_messages is not None
    conn = open_engine()
    collector = Collector()
    calls = (collector.on_message, collector.report_error)
    partial = frame(0x82, b"partial")
    scratch = bytearray(texts("a", "b", "c") + partial[:-2])
    assert deliver_messages(conn, *calls, 2, memoryview(scratch)) == 2
    scratch[:] = b"\xff" * len(scratch)
    assert collector.log == [("text", "a"), ("text", "b")]
    assert conn.buffered == len(texts("c") + partial[:-2])
    scratch = bytearray(partial[-2:] + texts("d"))
    assert deliver_messages(conn, *calls, 10, memoryview(scratch)) == 3
    scratch[:] = b"\xff" * len(scratch)
    assert collector.log[2:] == [("text", "c"), ("binary", b"partial"), ("text", "d")]
    assert conn.buffered == 0
    assert conn.next_event() is None


@pytest.mark.parametrize("held", [0, 1, 2, 3])
def test_deliver_messages_in_place_behind_buffered_frames(held: int) -> None:
    """A read given to ``deliver_messages`` while the engine already buffers a whole frame
    and ``held`` bytes of the next (reads that came while a pump was scheduled) is the same
    as ``receive_data(read)`` first: the buffered messages first, then the read's."""
    assert deliver_messages is not None
    conn = open_engine()
    collector = Collector()
    second = texts("bc")
    conn.receive_data(texts("a") + second[:held])
    read = bytearray(second[held:] + texts("d"))
    assert deliver_counted(conn, collector, 10, memoryview(read)) == 3
    assert collector.log == [("text", "a"), ("text", "bc"), ("text", "d")]
    assert conn.buffered == 0


@pytest.mark.parametrize("valid", [True, False])
def test_a_partly_validated_text_frame_completed_by_the_next_read(valid: bool) -> None:
    """A text frame whose start next_event has validated already (it waited for the rest),
    completed by the next read given to the pump: valid, it is handed over, then the read's
    other messages; invalid UTF-8 in its rest fails the connection with 1007. (The compiled
    path completes it in deliver_messages, the Python one in next_event.)"""
    conn = open_engine()
    collector = Collector()
    rest = "ü!".encode() if valid else b"\xed\xa0\x80!"
    frame = server_frame(0x1, b"abc" * 20 + rest)
    conn.receive_data(frame[:40])
    assert conn.next_event() is None  # The start is validated (RFC 6455 8.1, fail fast).
    read = bytearray(frame[40:] + texts("next"))
    drive_like_the_pump(conn, collector, lambda: 10, memoryview(read))
    if valid:
        assert collector.log == [("text", "abc" * 20 + "ü!"), ("text", "next")]
        assert conn.buffered == 0
    else:
        assert len(collector.log) == 1
        failed = collector.log[0]
        assert isinstance(failed, tuple)
        assert failed[0] == "failed"
        assert failed[3] == 1007


def test_deliver_messages_in_place_then_fail_inside_on_message() -> None:
    """A handler failing the connection during an in-place batch: the batch ends, Failed is
    the next event, and the rest of the read is dropped with the connection."""
    assert deliver_messages is not None
    conn = open_engine()
    seen: list[object] = []
    read = texts("0", "1", "2", "3")
    assert deliver_messages(conn, failing_at("1", conn, seen), fail_on_report, 10, read) == 2
    assert seen == ["0", "1"]
    failed = conn.next_event()
    assert isinstance(failed, Failed)
    assert (failed.kind, failed.close_code) == ("local", 1008)
    assert conn.next_event() is None
    assert conn.buffered == 0


def test_deliver_messages_in_place_waits_for_queued_events() -> None:
    """A read that carries the 101 and messages: the messages wait for the Opened event."""
    assert deliver_messages is not None
    conn, response = new_engine()
    collector = Collector()
    calls = (collector.on_message, collector.report_error)
    assert deliver_messages(conn, *calls, 10, response + texts("x", "y")) == 0
    assert isinstance(conn.next_event(), Opened)
    assert deliver_messages(conn, *calls, 10) == 2
    assert collector.log == [("text", "x"), ("text", "y")]


def test_deliver_messages_waits_for_queued_events() -> None:
    """Messages that arrived with the 101 wait for the Opened event: nothing is delivered
    while an event is queued or before the connection is open."""
    assert deliver_messages is not None
    conn, response = new_engine()
    collector = Collector()
    calls = (collector.on_message, collector.report_error)
    conn.receive_data(response[:10])
    assert deliver_messages(conn, *calls, 10) == 0  # CONNECTING
    conn.receive_data(response[10:] + frame(0x81, b"x") + frame(0x82, b"y"))
    assert deliver_messages(conn, *calls, 10) == 0  # Opened is queued
    assert collector.log == []
    assert isinstance(conn.next_event(), Opened)
    assert deliver_messages(conn, *calls, 10) == 2
    assert collector.log == [("text", "x"), ("binary", b"y")]


def test_deliver_messages_not_inside_a_fragmented_message() -> None:
    """While a fragmented message is being reassembled, a whole frame is a violation that
    ``next_event`` reports (1002), not a message."""
    assert deliver_messages is not None
    conn = open_engine()
    collector = Collector()
    conn.receive_data(frame(0x01, b"part"))
    assert conn.next_event() is None
    conn.receive_data(frame(0x81, b"whole"))
    assert deliver_messages(conn, collector.on_message, collector.report_error, 10) == 0
    failed = conn.next_event()
    assert isinstance(failed, Failed)
    assert failed.close_code == 1002
    assert collector.log == []


def test_deliver_messages_after_the_close_frames() -> None:
    """After our Close (CLOSING) messages are still delivered, as ``next_event`` does; after
    the peer's Close, nothing is."""
    assert deliver_messages is not None
    conn = open_engine()
    collector = Collector()
    calls = (collector.on_message, collector.report_error)
    conn.send_close(1000)
    assert conn.state is State.CLOSING
    conn.receive_data(frame(0x81, b"late") + frame(0x88, b"\x03\xe8") + frame(0x81, b"never"))
    assert deliver_messages(conn, *calls, 10) == 1
    assert collector.log == [("text", "late")]
    assert conn.next_event() == CloseReceived(1000, "")
    assert deliver_messages(conn, *calls, 10) == 0
    assert conn.next_event() is None
    assert collector.log == [("text", "late")]
