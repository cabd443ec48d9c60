"""The Streams subset (wsapi.streams), checked against the expectations of the
web-platform-tests' streams/readable-streams, streams/writable-streams, streams/piping and
queuing-strategy tests, ported to Python: each test names the behaviour it checks."""

from __future__ import annotations

import asyncio
import gc
from contextlib import aclosing
from typing import Any

import pytest

from wsapi import (
    ByteLengthQueuingStrategy,
    CountQueuingStrategy,
    Event,
    EventTarget,
    ReadableStream,
    WritableStream,
)
from wsapi.streams import ReadableStreamDefaultController, WritableStreamDefaultController


async def flush() -> None:
    """Let every callback already due run (WPT's flushAsyncEvents)."""
    for _ in range(10):
        await asyncio.sleep(0)


class Recorder:
    """An underlying source and sink that records its calls; pull/write wait on ``gate``
    when it is set (a slow consumer or producer)."""

    def __init__(self, chunks: list[Any] | None = None, *, close: bool = True) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.chunks = list(chunks or [])
        self.close_at_end = close
        self.gate: asyncio.Event | None = None
        self.controller: Any = None

    # Underlying source.
    def start(self, controller: Any) -> None:
        self.controller = controller
        self.calls.append(("start", None))

    async def pull(self, controller: ReadableStreamDefaultController[Any]) -> None:
        self.calls.append(("pull", None))
        if self.gate is not None:
            await self.gate.wait()
        if self.chunks:
            controller.enqueue(self.chunks.pop(0))
        elif self.close_at_end:
            controller.close()

    def cancel(self, reason: Any) -> None:
        self.calls.append(("cancel", reason))

    # Underlying sink.
    async def write(self, chunk: Any, controller: WritableStreamDefaultController[Any]) -> None:
        self.calls.append(("write", chunk))
        if self.gate is not None:
            await self.gate.wait()

    def close(self) -> None:
        self.calls.append(("close", None))

    def abort(self, reason: Any) -> None:
        self.calls.append(("abort", reason))

    def count(self, name: str) -> int:
        return sum(1 for call, _ in self.calls if call == name)


class Signal(EventTarget):
    """An AbortSignal-shaped object (``aborted``, ``reason``, the ``abort`` event)."""

    def __init__(self) -> None:
        super().__init__()
        self.aborted = False
        self.reason: Any = None

    def abort(self, reason: Any) -> None:
        self.aborted, self.reason = True, reason
        self.dispatchEvent(Event("abort"))


# -- ReadableStream: reading, locking -------------------------------------------------------------


async def test_read_gives_the_chunks_then_done() -> None:
    """read() fulfils with (chunk, False) in enqueue order, then (None, True) once closed, and
    the reader's closed resolves (readable-streams/general)."""

    def start(controller: ReadableStreamDefaultController[str]) -> None:
        controller.enqueue("a")
        controller.enqueue("b")
        controller.close()

    reader = ReadableStream[str]({"start": start}).getReader()
    assert await reader.read() == ("a", False)
    result = await reader.read()
    assert (result.value, result.done) == ("b", False)
    assert await reader.read() == (None, True)
    assert await reader.read() == (None, True)
    await reader.closed


async def test_a_pending_read_is_fulfilled_by_a_later_enqueue() -> None:
    """A read made on an empty stream waits and gets the next chunk enqueued."""
    source = Recorder(close=False)
    stream: ReadableStream[str] = ReadableStream({"start": source.start}, CountQueuingStrategy(0))
    reader = stream.getReader()
    read = reader.read()
    await flush()
    assert not read.done()
    source.controller.enqueue("x")
    assert await read == ("x", False)


async def test_a_second_reader_while_locked_is_a_type_error() -> None:
    """getReader() on a locked stream raises TypeError; locked follows the reader; after
    releaseLock() another reader may be had (readable-streams/default-reader)."""
    stream: ReadableStream[Any] = ReadableStream()
    assert not stream.locked
    reader = stream.getReader()
    assert stream.locked
    with pytest.raises(TypeError, match="locked"):
        stream.getReader()
    with pytest.raises(TypeError):
        stream.values()
    reader.releaseLock()
    assert not stream.locked
    stream.getReader().releaseLock()


async def test_release_lock_rejects_pending_reads_and_closed() -> None:
    """releaseLock() rejects a pending read and closed with TypeError; reading and cancelling
    through the released reader reject with TypeError."""
    stream: ReadableStream[Any] = ReadableStream()
    reader = stream.getReader()
    read = reader.read()
    reader.releaseLock()
    with pytest.raises(TypeError):
        await read
    with pytest.raises(TypeError):
        await reader.closed
    with pytest.raises(TypeError):
        await reader.read()
    with pytest.raises(TypeError):
        await reader.cancel()
    reader.releaseLock()  # a second release does nothing


async def test_enqueue_or_close_after_close_is_a_type_error() -> None:
    """The controller's enqueue() and close() raise TypeError once close() was called."""
    source = Recorder(close=False)
    ReadableStream({"start": source.start})
    source.controller.close()
    with pytest.raises(TypeError):
        source.controller.enqueue("late")
    with pytest.raises(TypeError):
        source.controller.close()
    assert source.controller.desiredSize == 0


async def test_start_that_raises_raises_from_the_constructor() -> None:
    """An exception from the source's start() propagates out of the constructor."""

    def start(controller: Any) -> None:
        raise RuntimeError("no start")

    with pytest.raises(RuntimeError, match="no start"):
        ReadableStream({"start": start})


async def test_a_timed_out_read_loses_no_chunk() -> None:
    """A read cancelled by wait_for() does not take the next chunk: the next read gets it."""
    source = Recorder(close=False)
    stream: ReadableStream[str] = ReadableStream({"start": source.start}, CountQueuingStrategy(0))
    reader = stream.getReader()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(reader.read(), 0.01)
    source.controller.enqueue("kept")
    assert await reader.read() == ("kept", False)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(reader.closed, 0.01)
    source.controller.close()
    await reader.closed


# -- ReadableStream: pull and backpressure --------------------------------------------------------


async def test_pull_fills_the_queue_to_the_high_water_mark_and_no_further() -> None:
    """pull() is called after start while desiredSize > 0, one call at a time, and not while
    the queue is full; a read makes room and pull is called once more
    (readable-streams/general, count-queuing-strategy-integration)."""
    source = Recorder(list(range(100)))
    stream: ReadableStream[int] = ReadableStream(source, CountQueuingStrategy(4))
    assert source.count("pull") == 0  # not before start's result settles
    await flush()
    assert source.count("pull") == 4
    assert source.controller.desiredSize == 0
    reader = stream.getReader()
    assert await reader.read() == (0, False)
    await flush()
    assert source.count("pull") == 5
    assert source.controller.desiredSize == 0


async def test_pull_is_not_called_again_until_its_promise_settles() -> None:
    """A pull whose promise is pending is not called again, even with reads waiting."""
    source = Recorder(["a", "b"])
    source.gate = asyncio.Event()
    stream: ReadableStream[str] = ReadableStream(source, CountQueuingStrategy(0))
    reader = stream.getReader()
    await flush()  # started: each read now asks for a pull
    reads = [reader.read(), reader.read()]
    await flush()
    assert source.count("pull") == 1
    source.gate.set()
    assert [await read for read in reads] == [("a", False), ("b", False)]


async def test_a_pull_that_raises_errors_the_stream() -> None:
    """An exception from pull() errors the stream: reads reject with it."""
    failure = RuntimeError("pull failed")

    def pull(controller: Any) -> None:
        raise failure

    reader = ReadableStream[Any]({"pull": pull}).getReader()
    with pytest.raises(RuntimeError) as raised:
        await reader.read()
    assert raised.value is failure
    with pytest.raises(RuntimeError):
        await reader.closed


async def test_error_rejects_reads_and_closed() -> None:
    """controller.error(e) drops the queue, rejects pending and later reads and closed with e,
    and desiredSize becomes None (readable-streams/general)."""
    source = Recorder(close=False)
    stream: ReadableStream[Any] = ReadableStream({"start": source.start})
    source.controller.enqueue("dropped")
    reader = stream.getReader()
    assert await reader.read() == ("dropped", False)
    read = reader.read()
    failure = ValueError("boom")
    source.controller.error(failure)
    for promise in (read, reader.read(), reader.closed):
        with pytest.raises(ValueError, match="boom") as raised:
            await promise
        assert raised.value is failure
    assert source.controller.desiredSize is None
    # A new reader of an errored stream has a rejected closed already.
    reader.releaseLock()
    with pytest.raises(ValueError, match="boom"):
        await stream.getReader().closed


# -- ReadableStream: cancel -----------------------------------------------------------------------


async def test_cancel_drops_the_queue_and_calls_the_source() -> None:
    """cancel(reason) calls the source's cancel with the reason, drops the queued chunks and
    closes the stream; cancel() of a locked stream rejects with TypeError
    (readable-streams/cancel)."""
    source = Recorder(["a", "b", "c"], close=False)
    stream: ReadableStream[str] = ReadableStream(source, CountQueuingStrategy(3))
    await flush()
    reader = stream.getReader()
    with pytest.raises(TypeError):
        await stream.cancel("locked")
    await reader.cancel("enough")
    assert ("cancel", "enough") in source.calls
    await reader.closed
    assert await reader.read() == (None, True)


async def test_cancel_waits_for_the_source_and_reports_its_failure() -> None:
    """cancel() settles as the source's cancel() does: it rejects with its failure."""

    async def cancel(reason: Any) -> None:
        await asyncio.sleep(0)
        raise OSError("cancel failed")

    stream: ReadableStream[Any] = ReadableStream({"cancel": cancel})
    with pytest.raises(OSError, match="cancel failed"):
        await stream.cancel()


# -- ReadableStream: async iteration --------------------------------------------------------------


async def test_async_for_reads_every_chunk_and_releases_the_lock() -> None:
    """async for gives every chunk, ends when the stream closes, and releases the lock
    (readable-streams/async-iterator)."""
    stream: ReadableStream[int] = ReadableStream(Recorder([1, 2, 3]))
    assert [chunk async for chunk in stream] == [1, 2, 3]
    assert not stream.locked


async def test_break_cancels_the_stream() -> None:
    """Leaving async for early cancels the stream (reason None) and releases the lock."""
    source = Recorder([1, 2, 3])
    stream: ReadableStream[int] = ReadableStream(source)
    async for chunk in stream:
        assert chunk == 1
        break
    await flush()
    assert ("cancel", None) in source.calls
    assert not stream.locked
    reader = stream.getReader()
    assert await reader.read() == (None, True)


async def test_break_with_prevent_cancel_keeps_the_stream() -> None:
    """With values(preventCancel=True), leaving early releases the lock but the stream stays
    readable with its remaining chunks."""
    source = Recorder([1, 2, 3])
    stream: ReadableStream[int] = ReadableStream(source)
    async with aclosing(stream.values(preventCancel=True)) as chunks:
        async for chunk in chunks:
            assert chunk == 1
            break
    assert not stream.locked
    assert source.count("cancel") == 0
    assert [chunk async for chunk in stream] == [2, 3]


async def test_async_for_over_an_errored_stream_raises_its_error() -> None:
    """async for raises the stream's error and releases the lock."""
    source = Recorder(close=False)
    stream: ReadableStream[Any] = ReadableStream({"start": source.start})
    source.controller.enqueue("first")
    seen = []

    async def consume() -> None:
        async for chunk in stream:
            seen.append(chunk)
            source.controller.error(LookupError("gone"))

    with pytest.raises(LookupError, match="gone"):
        await consume()
    assert seen == ["first"]
    assert not stream.locked


# -- WritableStream: writing, closing, locking ----------------------------------------------------


async def test_writes_reach_the_sink_in_order_then_close() -> None:
    """Chunks are written one at a time in order, close() runs after them, and the writer's
    closed resolves; writing after close() rejects with TypeError (writable-streams/write,
    close)."""
    sink = Recorder()
    writer: Any = WritableStream(sink).getWriter()
    writes = [writer.write(n) for n in range(3)]
    closing = writer.close()
    assert await asyncio.gather(*writes, closing) == [None] * 4
    await writer.closed
    assert sink.calls == [
        ("start", None),
        ("write", 0),
        ("write", 1),
        ("write", 2),
        ("close", None),
    ]
    with pytest.raises(TypeError):
        await writer.write(3)
    with pytest.raises(TypeError):
        await writer.close()


async def test_writes_wait_for_an_async_start() -> None:
    """No write reaches the sink before its start() has finished."""
    started = asyncio.Event()
    sink = Recorder()

    async def start(controller: Any) -> None:
        await started.wait()

    writer = WritableStream[Any]({"start": start, "write": sink.write}).getWriter()
    write = writer.write("x")
    await flush()
    assert sink.calls == []
    started.set()
    await write
    assert sink.calls == [("write", "x")]


async def test_a_second_writer_while_locked_is_a_type_error() -> None:
    """getWriter() on a locked stream raises TypeError; the stream's close() and abort()
    reject with TypeError while locked; releaseLock() rejects ready and closed with TypeError
    and desiredSize then raises TypeError (writable-streams/general)."""
    stream: WritableStream[Any] = WritableStream()
    writer = stream.getWriter()
    assert stream.locked
    with pytest.raises(TypeError):
        stream.getWriter()
    with pytest.raises(TypeError):
        await stream.close()
    with pytest.raises(TypeError):
        await stream.abort()
    writer.releaseLock()
    assert not stream.locked
    with pytest.raises(TypeError):
        await writer.ready
    with pytest.raises(TypeError):
        await writer.closed
    with pytest.raises(TypeError):
        writer.desiredSize  # noqa: B018 (the getter raises)
    with pytest.raises(TypeError):
        await writer.write("x")
    await stream.close()


# -- WritableStream: backpressure -----------------------------------------------------------------


async def test_ready_is_pending_while_full_and_resolves_when_drained() -> None:
    """With the default high-water mark of 1, a write makes desiredSize 0 and ready pending;
    when the sink finishes the write, desiredSize is 1 again and ready resolves
    (writable-streams/write, backpressure)."""
    sink = Recorder()
    sink.gate = asyncio.Event()
    writer = WritableStream[Any](sink).getWriter()
    await flush()
    assert writer.desiredSize == 1
    await writer.ready
    write = writer.write("a")
    assert writer.desiredSize == 0
    ready = writer.ready
    await flush()
    assert not ready.done()
    sink.gate.set()
    await ready
    await write
    assert writer.desiredSize == 1


async def test_a_timed_out_wait_for_ready_leaves_ready_working() -> None:
    """A wait_for() on ready that times out cancels nothing of the stream: ready still
    resolves when the sink drains, and closed still resolves on close."""
    sink = Recorder()
    sink.gate = asyncio.Event()
    writer = WritableStream[Any](sink).getWriter()
    writer.write("a")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(writer.ready, 0.01)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(writer.closed, 0.01)
    assert not writer.ready.done()
    sink.gate.set()
    await writer.ready
    await writer.close()
    await writer.closed


async def test_the_ready_idiom_sends_without_awaiting_each_write() -> None:
    """``await writer.ready; writer.write(chunk)`` keeps at most high-water-mark chunks queued
    and delivers them all, in order."""
    sink = Recorder()
    stream: WritableStream[int] = WritableStream(sink, CountQueuingStrategy(2))
    writer = stream.getWriter()
    most_queued = 0.0
    for n in range(20):
        await writer.ready
        writer.write(n)
        most_queued = max(most_queued, 2 - (writer.desiredSize or 0))
    await writer.close()
    assert [chunk for call, chunk in sink.calls if call == "write"] == list(range(20))
    assert most_queued <= 2


async def test_dropped_writes_that_reject_are_not_reported() -> None:
    """A write whose future the program dropped and that rejects when the sink fails is not
    logged as "exception was never retrieved": the failure surfaces through ready."""
    failure = OSError("sink failed")

    async def write(chunk: Any, controller: Any) -> None:
        raise failure

    stream: WritableStream[int] = WritableStream({"write": write}, CountQueuingStrategy(3))
    writer = stream.getWriter()
    for n in range(3):
        writer.write(n)
    await flush()
    with pytest.raises(OSError, match="sink failed") as raised:
        await writer.ready
    assert raised.value is failure
    del writer, stream
    gc.collect()
    await flush()


# -- WritableStream: errors and abort -------------------------------------------------------------


async def test_a_failing_sink_write_errors_the_stream() -> None:
    """A sink write that fails rejects that write, the queued ones, closed and later writes
    with its error (writable-streams/error)."""
    failure = OSError("disk full")

    async def write(chunk: Any, controller: Any) -> None:
        if chunk == "bad":
            raise failure

    writer = WritableStream[Any]({"write": write}, CountQueuingStrategy(4)).getWriter()
    ok, bad, queued = writer.write("ok"), writer.write("bad"), writer.write("queued")
    await ok
    for promise in (bad, queued, writer.closed, writer.write("later")):
        with pytest.raises(OSError, match="disk full") as raised:
            await promise
        assert raised.value is failure
    assert writer.desiredSize is None


async def test_controller_error_rejects_ready_and_closed() -> None:
    """controller.error(e) errors the stream: ready, closed and writes reject with e; the
    sink's close and abort are not called."""
    sink = Recorder()
    writer = WritableStream[Any](sink).getWriter()
    await flush()
    failure = ValueError("sink says no")
    sink.controller.error(failure)
    for promise in (writer.ready, writer.closed, writer.write("x")):
        with pytest.raises(ValueError, match="sink says no") as raised:
            await promise
        assert raised.value is failure
    assert sink.count("close") == sink.count("abort") == 0


async def test_abort_drops_queued_writes_and_calls_the_sink() -> None:
    """abort(reason) rejects the queued writes and closed with the reason, waits for the write
    in flight, then calls the sink's abort with the reason (writable-streams/aborting)."""
    sink = Recorder()
    sink.gate = asyncio.Event()
    writer = WritableStream[Any](sink, CountQueuingStrategy(4)).getWriter()
    in_flight, queued = writer.write("a"), writer.write("b")
    await flush()
    reason = KeyError("stop")
    aborting = writer.abort(reason)
    with pytest.raises(KeyError):
        await writer.ready
    await flush()
    assert sink.count("abort") == 0  # the write in flight finishes first
    sink.gate.set()
    await aborting
    await in_flight
    for promise in (queued, writer.closed):
        with pytest.raises(KeyError) as raised:
            await promise
        assert raised.value is reason
    assert sink.calls[-1] == ("abort", reason)
    assert [call for call, _ in sink.calls].count("write") == 1


async def test_abort_after_close_resolves_and_close_wins() -> None:
    """abort() of a closed stream resolves and calls nothing."""
    sink = Recorder()
    stream: WritableStream[Any] = WritableStream(sink)
    await stream.close()
    await stream.abort("late")
    assert sink.count("abort") == 0


# -- Queuing strategies ---------------------------------------------------------------------------


async def test_queuing_strategies_sizes() -> None:
    """CountQueuingStrategy counts 1 a chunk; ByteLengthQueuingStrategy counts bytes (UTF-8
    bytes of a str) (count-queuing-strategy, byte-length-queuing-strategy)."""
    assert CountQueuingStrategy(highWaterMark=3).highWaterMark == 3
    assert CountQueuingStrategy(3).size(b"anything") == 1
    strategy = ByteLengthQueuingStrategy(highWaterMark=16)
    assert strategy.highWaterMark == 16
    assert strategy.size(b"abcd") == 4
    assert strategy.size(memoryview(b"abcdef")[1:3]) == 2
    assert strategy.size("h\u00e9llo") == 6


async def test_desired_size_follows_the_byte_length_strategy() -> None:
    """desiredSize is the high-water mark less the queued bytes, for readable and writable."""
    source = Recorder(close=False)
    ReadableStream({"start": source.start}, ByteLengthQueuingStrategy(10))
    source.controller.enqueue(b"abcd")
    assert source.controller.desiredSize == 6
    source.controller.enqueue(b"1234567")
    assert source.controller.desiredSize == -1

    sink = Recorder()
    sink.gate = asyncio.Event()
    writer = WritableStream[Any](sink, ByteLengthQueuingStrategy(10)).getWriter()
    writer.write(b"abcdef")
    assert writer.desiredSize == 4
    writer.write(b"abcdef")
    assert writer.desiredSize == -2
    assert not writer.ready.done()
    sink.gate.set()
    await writer.close()


async def test_default_high_water_mark_is_one() -> None:
    """Without a strategy both streams have a high-water mark of 1 chunk."""
    source = Recorder(close=False)
    ReadableStream({"start": source.start})
    assert source.controller.desiredSize == 1
    writer = WritableStream[Any]().getWriter()
    assert writer.desiredSize == 1


async def test_bad_strategies_are_refused() -> None:
    """A negative or NaN high-water mark is a ValueError (RangeError) from the constructor; a
    size that raises errors the stream and raises from enqueue(); a negative size is a
    ValueError (readable-streams/bad-strategies)."""
    with pytest.raises(ValueError, match="non-negative"):
        ReadableStream(None, {"highWaterMark": -1})
    with pytest.raises(ValueError, match="non-negative"):
        WritableStream(None, {"highWaterMark": float("nan")})

    def size(chunk: Any) -> int:
        raise ArithmeticError("no size")

    source = Recorder(close=False)
    stream: ReadableStream[Any] = ReadableStream({"start": source.start}, {"size": size})
    with pytest.raises(ArithmeticError):
        source.controller.enqueue("x")
    with pytest.raises(ArithmeticError):
        await stream.getReader().closed

    source = Recorder(close=False)
    ReadableStream({"start": source.start}, {"size": lambda chunk: -1})
    with pytest.raises(ValueError, match="non-negative"):
        source.controller.enqueue("x")


# -- pipeTo ---------------------------------------------------------------------------------------


async def test_pipe_to_carries_every_chunk_and_closes() -> None:
    """pipeTo() writes every chunk in order, closes the destination when the source closes,
    resolves, and releases both locks (piping/general, close-propagation-forward)."""
    source, sink = Recorder(list(range(10))), Recorder()
    readable: ReadableStream[int] = ReadableStream(source)
    writable: WritableStream[int] = WritableStream(sink)
    piping = readable.pipeTo(writable)
    assert readable.locked
    assert writable.locked
    await piping
    assert [chunk for call, chunk in sink.calls if call == "write"] == list(range(10))
    assert sink.calls[-1] == ("close", None)
    assert not readable.locked
    assert not writable.locked


async def test_pipe_to_with_prevent_close_leaves_the_destination_open() -> None:
    """preventClose: the destination is not closed and can be written to afterwards."""
    sink = Recorder()
    writable: WritableStream[int] = WritableStream(sink)
    await ReadableStream[int](Recorder([1])).pipeTo(writable, preventClose=True)
    assert sink.count("close") == 0
    writer = writable.getWriter()
    await writer.write(2)
    assert [chunk for call, chunk in sink.calls if call == "write"] == [1, 2]


async def test_pipe_to_of_a_locked_stream_is_a_type_error() -> None:
    """pipeTo() rejects with TypeError when the source or the destination is locked."""
    readable: ReadableStream[Any] = ReadableStream()
    writable: WritableStream[Any] = WritableStream()
    writer = writable.getWriter()
    with pytest.raises(TypeError):
        await readable.pipeTo(writable)
    writer.releaseLock()
    readable.getReader()
    with pytest.raises(TypeError):
        await readable.pipeTo(writable)


@pytest.mark.parametrize("prevent_abort", [False, True])
async def test_pipe_to_propagates_a_source_error_forward(prevent_abort: bool) -> None:
    """A source that errors aborts the destination with its error (unless preventAbort) and
    the pipe rejects with it (piping/error-propagation-forward)."""
    source, sink = Recorder(close=False), Recorder()
    readable: ReadableStream[Any] = ReadableStream({"start": source.start})
    writable: WritableStream[Any] = WritableStream(sink)
    piping = readable.pipeTo(writable, preventAbort=prevent_abort)
    source.controller.enqueue("a")
    await flush()
    failure = RuntimeError("source broke")
    source.controller.error(failure)
    with pytest.raises(RuntimeError) as raised:
        await piping
    assert raised.value is failure
    assert ("write", "a") in sink.calls
    assert (("abort", failure) in sink.calls) is not prevent_abort
    assert not writable.locked


@pytest.mark.parametrize("prevent_cancel", [False, True])
async def test_pipe_to_propagates_a_destination_error_backward(prevent_cancel: bool) -> None:
    """A destination that errors cancels the source with its error (unless preventCancel) and
    the pipe rejects with it (piping/error-propagation-backward)."""
    source = Recorder(close=False)
    failure = OSError("sink broke")

    async def write(chunk: Any, controller: Any) -> None:
        raise failure

    readable: ReadableStream[Any] = ReadableStream(
        {"start": source.start, "cancel": source.cancel}
    )
    piping = readable.pipeTo(WritableStream({"write": write}), preventCancel=prevent_cancel)
    source.controller.enqueue("a")
    with pytest.raises(OSError, match="sink broke") as raised:
        await piping
    assert raised.value is failure
    assert (("cancel", failure) in source.calls) is not prevent_cancel
    assert not readable.locked


async def test_pipe_to_reads_nothing_while_the_destination_is_erroring() -> None:
    """Once the destination is erroring (a write still in flight) the pipe reads no more
    chunks: with preventCancel the source keeps them."""
    source, sink = Recorder(close=False), Recorder()
    sink.gate = asyncio.Event()
    readable: ReadableStream[int] = ReadableStream(
        {"start": source.start}, CountQueuingStrategy(3)
    )
    for n in range(3):
        source.controller.enqueue(n)
    piping = readable.pipeTo(WritableStream(sink), preventCancel=True)
    await flush()
    assert sink.calls[-1] == ("write", 0)
    sink.controller.error(EOFError("sink gone"))
    await flush()
    sink.gate.set()
    with pytest.raises(EOFError, match="sink gone"):
        await piping
    reader = readable.getReader()
    assert [await reader.read(), await reader.read()] == [(1, False), (2, False)]


async def test_pipe_to_cancels_the_source_when_the_destination_closes() -> None:
    """A destination closed during the pipe cancels the source with a TypeError, and the pipe
    rejects with it (piping/close-propagation-backward)."""
    source, sink = Recorder(close=False), Recorder()
    readable: ReadableStream[Any] = ReadableStream(
        {"start": source.start, "cancel": source.cancel}
    )
    writable: WritableStream[Any] = WritableStream(sink)
    await writable.close()
    with pytest.raises(TypeError):
        await readable.pipeTo(writable)
    assert source.count("cancel") == 1
    assert isinstance(source.calls[-1][1], TypeError)


async def test_pipe_to_follows_the_destination_backpressure() -> None:
    """While the destination is full the pipe does not read, so the source's queue fills and
    pull stops (piping/flow-control)."""
    source, sink = Recorder(list(range(1000))), Recorder()
    sink.gate = asyncio.Event()
    readable: ReadableStream[int] = ReadableStream(source, CountQueuingStrategy(2))
    piping = readable.pipeTo(WritableStream(sink, CountQueuingStrategy(2)))
    await flush()
    await flush()
    # One chunk in the sink, two queued in the writable, two in the readable's queue.
    assert sink.count("write") == 1
    assert source.count("pull") <= 6
    sink.gate.set()
    await piping
    assert sink.count("write") == 1000


@pytest.mark.parametrize("already", [False, True])
async def test_pipe_to_is_stopped_by_its_signal(already: bool) -> None:
    """An abort of the signal (before or during the pipe) aborts the destination and cancels
    the source with the signal's reason, and the pipe rejects with it (piping/abort)."""
    source, sink = Recorder(close=False), Recorder()
    readable: ReadableStream[Any] = ReadableStream(
        {"start": source.start, "cancel": source.cancel}
    )
    writable: WritableStream[Any] = WritableStream(sink)
    signal = Signal()
    reason = TimeoutError("took too long")
    if already:
        signal.abort(reason)
    piping = readable.pipeTo(writable, signal=signal)
    await flush()
    if not already:
        signal.abort(reason)
    with pytest.raises(TimeoutError) as raised:
        await piping
    assert raised.value is reason
    assert ("abort", reason) in sink.calls
    assert ("cancel", reason) in source.calls
    assert not readable.locked
    assert not writable.locked


async def test_pipe_to_signal_with_prevent_abort_and_cancel_touches_neither() -> None:
    """With preventAbort and preventCancel, the signal only stops the pipe."""
    source, sink = Recorder(close=False), Recorder()
    readable: ReadableStream[Any] = ReadableStream({"start": source.start})
    writable: WritableStream[Any] = WritableStream(sink)
    signal = Signal()
    piping = readable.pipeTo(writable, signal=signal, preventAbort=True, preventCancel=True)
    await flush()
    signal.abort(KeyError("stop"))
    with pytest.raises(KeyError):
        await piping
    assert sink.count("abort") == source.count("cancel") == 0
    source.controller.enqueue("still readable")
    assert await readable.getReader().read() == ("still readable", False)
