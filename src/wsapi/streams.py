"""The subset of the WHATWG Streams standard (https://streams.spec.whatwg.org/) that
WebSocketStream and its users need: ``ReadableStream`` with its default reader and
controller, ``WritableStream`` with its default writer and controller, ``pipeTo()``, and the
two queuing strategies. No Python implementation of the standard exists to build on.

Theory of operation
-------------------

Rule 1: names are the standard's. Public members keep its camelCase IDL names; each abstract
operation is a private function named after it in snake_case (ReadableStreamDefaultController
CallPullIfNeeded is ``_rs_controller_call_pull_if_needed``), and its steps are the standard's,
in its order. States are the standard's strings: ``"readable" | "closed" | "errored"`` for a
readable, ``"writable" | "erroring" | "errored" | "closed"`` for a writable.

Rule 2: a promise is an ``asyncio.Future`` of the running loop, so streams are made and used
inside a running loop. "Upon fulfillment/rejection" is a done-callback, which runs as a later
callback of the loop as a promise reaction runs as a later microtask. An underlying source or
sink callback may be a plain function or return an awaitable (an ``async def`` method): the
awaitable becomes a task, as a returned promise would be adopted.

Rule 3: a rejected future nobody looks at is logged by asyncio ("exception was never
retrieved") as a browser reports an unhandled rejection. Where the standard sets a promise's
[[PromiseIsHandled]] (a reader's or writer's ``closed``, a writer's ``ready``), the future is
marked retrieved. So are the futures of ``writer.write()``: the standard does not mark them,
but the Streams idiom ``await writer.ready; writer.write(chunk)`` drops them, and its failure
is never lost, since it rejects ``ready`` and ``closed`` too. Awaiting any of them still
raises. ``pipeTo()``, ``read()``, ``cancel()``, ``close()`` and ``abort()`` are not marked:
their failure is logged if the program drops it.

Rule 4: a future the program cancels (``asyncio.wait_for()`` timing out on ``read()`` or
``ready``) is the program's, and the stream loses nothing by it: a cancelled read's chunk goes
to the next read, and a cancelled ``ready`` or ``closed`` is replaced by a new one telling the
same state the next time it is asked for. (A promise cannot be cancelled; a future can.)

Departures from JavaScript: ``read()`` gives the tuple ``(value, done)`` (a ``ReadResult``);
``async for`` over a readable is its ``values()`` async iterator, an async generator, so
``break`` cancels the stream when the loop drops the iterator (at once in CPython, through
asyncio's async generator finalizer) rather than synchronously; ``contextlib.aclosing()``
makes it explicit. RangeError is ``ValueError``. Not implemented: byte streams (``type:
"bytes"``, BYOB readers), ``tee()``, ``pipeThrough()``, ``TransformStream``,
``ReadableStream.from()`` and the writable controller's ``signal``.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar

from .errors import DOMException

__all__ = [
    "ByteLengthQueuingStrategy",
    "CountQueuingStrategy",
    "ReadResult",
    "ReadableStream",
    "ReadableStreamDefaultController",
    "ReadableStreamDefaultReader",
    "WritableStream",
    "WritableStreamDefaultController",
    "WritableStreamDefaultWriter",
]

T = TypeVar("T")

# -- Promises ---------------------------------------------------------------------------------


def _new_promise() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


def _resolved(value: Any = None) -> asyncio.Future[Any]:
    promise = _new_promise()
    promise.set_result(value)
    return promise


def _rejected(error: BaseException, *, handled: bool = False) -> asyncio.Future[Any]:
    promise = _new_promise()
    _reject(promise, error, handled=handled)
    return promise


def _resolve(promise: asyncio.Future[Any], value: Any = None) -> None:
    if not promise.done():
        promise.set_result(value)


def _reject(promise: asyncio.Future[Any], error: BaseException, *, handled: bool = False) -> None:
    if not promise.done():
        promise.set_exception(error)
    if handled:
        _mark_handled(promise)


def _mark_handled(promise: asyncio.Future[Any]) -> None:
    """Set [[PromiseIsHandled]]: asyncio then does not log the rejection as unretrieved."""
    if promise.done() and not promise.cancelled():
        promise.exception()
    else:
        promise.add_done_callback(_mark_handled)


def _promise_resolve(value: Any) -> asyncio.Future[Any]:
    """ "A promise resolved with" a value: an awaitable is adopted (as a task), anything
    else fulfills at once."""
    if isinstance(value, asyncio.Future):
        return value
    if isinstance(value, Awaitable):
        return asyncio.ensure_future(value)
    return _resolved(value)


def _promise_call(function: Callable[..., Any] | None, *args: Any) -> asyncio.Future[Any]:
    """Call an underlying source's or sink's callback; what it raises rejects the result
    (Web IDL: a callback's exception becomes a rejected promise)."""
    if function is None:
        return _resolved()
    try:
        return _promise_resolve(function(*args))
    except Exception as error:
        return _rejected(error)


def _upon(
    promise: asyncio.Future[Any],
    on_fulfilled: Callable[[Any], None] | None,
    on_rejected: Callable[[BaseException], None] | None,
) -> None:
    """React to a promise's settlement ("upon fulfillment ... upon rejection ..."); the
    rejection is then handled."""

    def react(done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            if on_rejected is not None:
                on_rejected(asyncio.CancelledError())
            return
        error = done.exception()
        if error is None:
            if on_fulfilled is not None:
                on_fulfilled(done.result())
        elif on_rejected is not None:
            on_rejected(error)

    promise.add_done_callback(react)


def _to_undefined(promise: asyncio.Future[Any]) -> asyncio.Future[Any]:
    """ "Transforming" a promise by a reaction that returns undefined."""
    result = _new_promise()
    _upon(promise, lambda _: _resolve(result), lambda error: _reject(result, error))
    return result


# -- Queuing strategies (Streams section 7) and queue-with-sizes (section 8) ---------------------


class _QueuingStrategy:
    """A queuing strategy: a read-only ``highWaterMark`` and a ``size(chunk)``."""

    __slots__ = ("_high_water_mark",)

    def __init__(self, highWaterMark: float) -> None:
        self._high_water_mark = highWaterMark

    @property
    def highWaterMark(self) -> float:
        return self._high_water_mark


class CountQueuingStrategy(_QueuingStrategy):
    """Counts chunks: each chunk has size 1, so ``highWaterMark`` is a number of chunks."""

    __slots__ = ()

    @staticmethod
    def size(chunk: object) -> int:
        """Every chunk counts as 1."""
        return 1


class ByteLengthQueuingStrategy(_QueuingStrategy):
    """Counts bytes: a chunk's size is its byte length (``len()`` of bytes-like chunks, the
    UTF-8 length of a ``str``, else the chunk's ``byteLength``)."""

    __slots__ = ()

    @staticmethod
    def size(chunk: Any) -> Any:
        """The chunk's byte length, as the class says."""
        if isinstance(chunk, (bytes, bytearray)):
            return len(chunk)
        if isinstance(chunk, memoryview):
            return chunk.nbytes
        if isinstance(chunk, str):
            return len(chunk) if chunk.isascii() else len(chunk.encode("utf-8", "surrogatepass"))
        return getattr(chunk, "byteLength", None)


def _start_algorithm(start: Any, controller: Any) -> Callable[[], Any]:
    """The startAlgorithm of a source or sink: its ``start(controller)``, if it has one."""
    return (lambda: start(controller)) if start is not None else (lambda: None)


def _member(dictionary: Any, name: str) -> Any:
    """A member of a Web IDL dictionary given as a mapping or as an object's attribute."""
    if dictionary is None:
        return None
    if isinstance(dictionary, Mapping):
        return dictionary.get(name)
    return getattr(dictionary, name, None)


def _extract_high_water_mark(strategy: Any, default: float) -> float:
    """ExtractHighWaterMark: the strategy's ``highWaterMark``, or the default."""
    high_water_mark = _member(strategy, "highWaterMark")
    if high_water_mark is None:
        return default
    if isinstance(high_water_mark, bool) or not isinstance(high_water_mark, (int, float)):
        raise TypeError(f"highWaterMark must be a number, not {high_water_mark!r}")
    if math.isnan(high_water_mark) or high_water_mark < 0:
        raise ValueError(f"highWaterMark must be a non-negative number, not {high_water_mark!r}")
    return high_water_mark


def _extract_size_algorithm(strategy: Any) -> Callable[[Any], Any]:
    """ExtractSizeAlgorithm: the strategy's ``size``, or a size of 1 for every chunk."""
    size = _member(strategy, "size")
    if size is None:
        return CountQueuingStrategy.size
    if not callable(size):
        raise TypeError(f"the strategy's size must be callable, not {size!r}")
    return size  # type: ignore[no-any-return]


class _Queue:
    """A queue-with-sizes (section 8.2): the values and their total size."""

    __slots__ = ("items", "total_size")

    def __init__(self) -> None:
        self.items: deque[tuple[Any, float]] = deque()
        self.total_size: float = 0

    def enqueue_value_with_size(self, value: Any, size: Any) -> None:
        # EnqueueValueWithSize step 2-3: the size must be a finite non-negative number.
        if isinstance(size, bool) or not isinstance(size, (int, float)):
            raise ValueError(f"a chunk's size must be a number, not {size!r}")
        if math.isnan(size) or size < 0 or math.isinf(size):
            raise ValueError(f"a chunk's size must be finite and non-negative, not {size!r}")
        self.items.append((value, size))
        self.total_size += size

    def dequeue_value(self) -> Any:
        value, size = self.items.popleft()
        self.total_size -= size
        # DequeueValue step 6: rounding errors must not leave a negative total.
        self.total_size = max(self.total_size, 0)
        return value

    def peek_queue_value(self) -> Any:
        return self.items[0][0]

    def reset_queue(self) -> None:
        self.items.clear()
        self.total_size = 0


# -- Readable streams (section 4) ---------------------------------------------------------------


class ReadResult(NamedTuple):
    """What ``reader.read()`` gives: ``value, done = await reader.read()`` (``None, True``
    once the stream is closed)."""

    value: Any
    done: bool


class ReadableStream(Generic[T]):
    """``ReadableStream(underlying_source=None, strategy=None)``: a source of chunks that a
    reader pulls, with backpressure. ``underlying_source`` has (as a mapping or as
    attributes) ``start(controller)``, ``pull(controller)`` and ``cancel(reason)``, each
    optional and each may be ``async``; ``strategy`` has ``highWaterMark`` (default 1) and
    ``size(chunk)``. Made inside a running event loop."""

    __slots__ = ("__weakref__", "_controller", "_disturbed", "_reader", "_state", "_stored_error")

    def __init__(self, underlying_source: Any = None, strategy: Any = None) -> None:
        # ReadableStream constructor steps (section 4.2.4).
        if _member(underlying_source, "type") is not None:
            raise ValueError("byte streams (type 'bytes') are not implemented")
        size = _extract_size_algorithm(strategy)
        high_water_mark = _extract_high_water_mark(strategy, 1)
        # InitializeReadableStream.
        self._state = "readable"
        self._reader: ReadableStreamDefaultReader[T] | None = None
        self._stored_error: Any = None
        self._disturbed = False
        controller = ReadableStreamDefaultController[T]()
        self._controller = controller
        # SetUpReadableStreamDefaultControllerFromUnderlyingSource.
        start = _member(underlying_source, "start")
        pull = _member(underlying_source, "pull")
        cancel = _member(underlying_source, "cancel")
        controller._set_up(
            self,
            start_algorithm=_start_algorithm(start, controller),
            pull_algorithm=lambda: _promise_call(pull, controller),
            cancel_algorithm=lambda reason: _promise_call(cancel, reason),
            high_water_mark=high_water_mark,
            size_algorithm=size,
        )

    @property
    def locked(self) -> bool:
        """Whether a reader holds the stream (IsReadableStreamLocked)."""
        return self._reader is not None

    def cancel(self, reason: Any = None) -> asyncio.Future[None]:
        """Cancel the stream: its queue is dropped and the source's ``cancel`` runs."""
        if self.locked:
            return _rejected(TypeError("cannot cancel a stream that a reader holds"))
        return _readable_stream_cancel(self, reason)

    def getReader(self) -> ReadableStreamDefaultReader[T]:
        """A default reader that holds the stream (``TypeError`` if one already does)."""
        return ReadableStreamDefaultReader(self)

    def values(self, *, preventCancel: bool = False) -> AsyncGenerator[T, None]:
        """The stream's async iterator: holds a reader from now on (``TypeError`` if the
        stream is locked); leaving the iteration early cancels the stream unless
        ``preventCancel``."""
        return _iterate(ReadableStreamDefaultReader(self), preventCancel)

    def __aiter__(self) -> AsyncIterator[T]:
        return self.values()

    def pipeTo(
        self,
        destination: WritableStream[T],
        *,
        preventClose: bool = False,
        preventAbort: bool = False,
        preventCancel: bool = False,
        signal: Any = None,
    ) -> asyncio.Future[None]:
        """Pipe every chunk into ``destination``, with backpressure; resolves once the pipe
        is done. ``signal`` is an AbortSignal (anything with ``aborted``, ``reason`` and
        ``addEventListener("abort", listener)``)."""
        if self.locked:
            return _rejected(TypeError("cannot pipe from a stream that a reader holds"))
        if destination.locked:
            return _rejected(TypeError("cannot pipe to a stream that a writer holds"))
        return _readable_stream_pipe_to(
            self,
            destination,
            prevent_close=preventClose,
            prevent_abort=preventAbort,
            prevent_cancel=preventCancel,
            signal=signal,
        )

    def __repr__(self) -> str:
        return f"<ReadableStream {self._state}{' locked' if self.locked else ''}>"


async def _iterate(
    reader: ReadableStreamDefaultReader[T], prevent_cancel: bool
) -> AsyncGenerator[T, None]:
    """The readable stream async iterator (section 4.2.5): "get the next iteration result"
    and "asynchronous iterator return"."""
    try:
        while True:
            value, done = await reader.read()
            if done:
                return
            yield value
    finally:
        # Done or errored: release the lock. Left early ("asynchronous iterator return"):
        # cancel the stream unless preventCancel, then release.
        stream = reader._stream
        if stream is not None:
            if stream._state != "readable" or prevent_cancel:
                _rs_default_reader_release(reader)
            else:
                result = _readable_stream_cancel(stream, None)
                _rs_default_reader_release(reader)
                await result


class ReadableStreamDefaultController(Generic[T]):
    """What an underlying source is given to enqueue chunks, close or error the stream."""

    __slots__ = (
        "_cancel_algorithm",
        "_close_requested",
        "_pull_again",
        "_pull_algorithm",
        "_pulling",
        "_queue",
        "_started",
        "_strategy_hwm",
        "_strategy_size",
        "_stream",
    )

    def _set_up(
        self,
        stream: ReadableStream[T],
        *,
        start_algorithm: Callable[[], Any],
        pull_algorithm: Callable[[], asyncio.Future[Any]],
        cancel_algorithm: Callable[[Any], asyncio.Future[Any]],
        high_water_mark: float,
        size_algorithm: Callable[[Any], Any],
    ) -> None:
        # SetUpReadableStreamDefaultController.
        self._stream: ReadableStream[T] = stream
        self._queue = _Queue()
        self._started = self._close_requested = self._pull_again = self._pulling = False
        self._strategy_size: Callable[[Any], Any] | None = size_algorithm
        self._strategy_hwm = high_water_mark
        self._pull_algorithm: Callable[[], asyncio.Future[Any]] | None = pull_algorithm
        self._cancel_algorithm: Callable[[Any], asyncio.Future[Any]] | None = cancel_algorithm
        stream._controller = self
        # Step 9-11: run start (what it raises propagates to the constructor), then once its
        # result settles the controller is started and pulls if it needs to.
        start_promise = _promise_resolve(start_algorithm())

        def started(_: Any) -> None:
            self._started = True
            _rs_controller_call_pull_if_needed(self)

        _upon(start_promise, started, lambda error: _rs_controller_error(self, error))

    @property
    def desiredSize(self) -> float | None:
        """How many more chunks (by the strategy's size) fill the queue to its high-water
        mark; negative when over it, ``None`` once errored, 0 once closed."""
        return _rs_controller_get_desired_size(self)

    def close(self) -> None:
        """Close the stream once its queued chunks are read."""
        if not _rs_controller_can_close_or_enqueue(self):
            raise TypeError("the stream is closed or closing: it cannot be closed")
        _rs_controller_close(self)

    def enqueue(self, chunk: T) -> None:
        """Queue a chunk (or hand it to a pending read at once)."""
        if not _rs_controller_can_close_or_enqueue(self):
            raise TypeError("the stream is closed or closing: nothing can be enqueued")
        _rs_controller_enqueue(self, chunk)

    def error(self, e: Any = None) -> None:
        """Error the stream: pending and later reads reject with ``e``."""
        _rs_controller_error(self, e)


class ReadableStreamDefaultReader(Generic[T]):
    """``ReadableStreamDefaultReader(stream)`` or ``stream.getReader()``: holds the stream's
    lock and reads its chunks."""

    __slots__ = ("_closed_promise", "_read_requests", "_stream")

    def __init__(self, stream: ReadableStream[T]) -> None:
        # SetUpReadableStreamDefaultReader.
        if stream.locked:
            raise TypeError("the stream is locked to a reader already")
        self._read_requests: deque[asyncio.Future[ReadResult]] = deque()
        # ReadableStreamReaderGenericInitialize.
        self._stream: ReadableStream[T] | None = stream
        stream._reader = self
        if stream._state == "readable":
            self._closed_promise = _new_promise()
        elif stream._state == "closed":
            self._closed_promise = _resolved()
        else:
            self._closed_promise = _rejected(stream._stored_error, handled=True)

    @property
    def closed(self) -> asyncio.Future[None]:
        """Resolves when the stream closes, rejects when it errors or the lock is released."""
        if self._closed_promise.cancelled():
            # The program cancelled it (rule 4): a new one tells the same state.
            stream = self._stream
            if stream is None:
                self._closed_promise = _rejected(
                    TypeError("the reader was released"), handled=True
                )
            elif stream._state == "readable":
                self._closed_promise = _new_promise()
            elif stream._state == "closed":
                self._closed_promise = _resolved()
            else:
                error = _as_exception(stream._stored_error)
                self._closed_promise = _rejected(error, handled=True)
        return self._closed_promise

    def read(self) -> asyncio.Future[ReadResult]:
        """The next chunk as ``(value, done)``; ``(None, True)`` once the stream closed."""
        if self._stream is None:
            return _rejected(TypeError("the reader was released: it cannot read"))
        read_request: asyncio.Future[ReadResult] = _new_promise()
        _rs_default_reader_read(self, read_request)
        return read_request

    def releaseLock(self) -> None:
        """Release the stream: pending reads reject with ``TypeError``."""
        if self._stream is None:
            return
        _rs_default_reader_release(self)

    def cancel(self, reason: Any = None) -> asyncio.Future[None]:
        """Cancel the stream (ReadableStreamReaderGenericCancel)."""
        if self._stream is None:
            return _rejected(TypeError("the reader was released: it cannot cancel"))
        return _readable_stream_cancel(self._stream, reason)


# Readable stream abstract operations (section 4.9).


def _readable_stream_cancel(stream: ReadableStream[Any], reason: Any) -> asyncio.Future[None]:
    # ReadableStreamCancel.
    # 1. Set stream.[[disturbed]] to true.
    stream._disturbed = True
    # 2-3. A closed stream resolves; an errored one rejects with its stored error.
    if stream._state == "closed":
        return _resolved()
    if stream._state == "errored":
        return _rejected(_as_exception(stream._stored_error))
    # 4. Perform ! ReadableStreamClose(stream).
    _readable_stream_close(stream)
    # 7-8. Let sourceCancelPromise be controller.[[CancelSteps]](reason); transform it to
    # undefined.
    controller = stream._controller
    controller._queue.reset_queue()
    cancel = controller._cancel_algorithm
    result = cancel(reason) if cancel is not None else _resolved()
    _rs_controller_clear_algorithms(controller)
    return _to_undefined(result)


def _readable_stream_close(stream: ReadableStream[Any]) -> None:
    # ReadableStreamClose.
    stream._state = "closed"
    reader = stream._reader
    if reader is None:
        return
    _resolve(reader._closed_promise)
    requests, reader._read_requests = reader._read_requests, deque()
    for request in requests:
        _resolve(request, ReadResult(None, True))


def _readable_stream_error(stream: ReadableStream[Any], e: Any) -> None:
    # ReadableStreamError.
    stream._state = "errored"
    stream._stored_error = e
    reader = stream._reader
    if reader is None:
        return
    _reject(reader._closed_promise, _as_exception(e), handled=True)
    _rs_default_reader_error_read_requests(reader, e)


def _as_exception(e: Any) -> BaseException:
    """A rejection reason as a future's exception: a non-exception reason (JavaScript
    rejects with any value) is wrapped in an ``Exception`` whose only argument it is."""
    return e if isinstance(e, BaseException) else Exception(e)


def _rs_default_reader_read(
    reader: ReadableStreamDefaultReader[Any], read_request: asyncio.Future[Any]
) -> None:
    # ReadableStreamDefaultReaderRead.
    stream = reader._stream
    assert stream is not None
    stream._disturbed = True
    if stream._state == "closed":
        _resolve(read_request, ReadResult(None, True))
    elif stream._state == "errored":
        _reject(read_request, _as_exception(stream._stored_error))
    else:
        # ReadableStreamDefaultController [[PullSteps]].
        controller = stream._controller
        if controller._queue.items:
            chunk = controller._queue.dequeue_value()
            if controller._close_requested and not controller._queue.items:
                _rs_controller_clear_algorithms(controller)
                _readable_stream_close(stream)
            else:
                _rs_controller_call_pull_if_needed(controller)
            _resolve(read_request, ReadResult(chunk, False))
        else:
            reader._read_requests.append(read_request)
            _rs_controller_call_pull_if_needed(controller)


def _rs_default_reader_release(reader: ReadableStreamDefaultReader[Any]) -> None:
    # ReadableStreamDefaultReaderRelease, with ReadableStreamReaderGenericRelease.
    stream = reader._stream
    assert stream is not None
    released = TypeError("the reader's lock was released")
    if stream._state == "readable":
        _reject(reader._closed_promise, released, handled=True)
    else:
        reader._closed_promise = _rejected(released, handled=True)
    stream._reader = None
    reader._stream = None
    _rs_default_reader_error_read_requests(reader, released)


def _rs_default_reader_error_read_requests(
    reader: ReadableStreamDefaultReader[Any], e: Any
) -> None:
    # ReadableStreamDefaultReaderErrorReadRequests.
    requests, reader._read_requests = reader._read_requests, deque()
    for request in requests:
        _reject(request, _as_exception(e))


def _rs_controller_call_pull_if_needed(controller: ReadableStreamDefaultController[Any]) -> None:
    # ReadableStreamDefaultControllerCallPullIfNeeded.
    if not _rs_controller_should_call_pull(controller):
        return
    if controller._pulling:
        controller._pull_again = True
        return
    controller._pulling = True
    assert controller._pull_algorithm is not None

    def pulled(_: Any) -> None:
        controller._pulling = False
        if controller._pull_again:
            controller._pull_again = False
            _rs_controller_call_pull_if_needed(controller)

    _upon(
        controller._pull_algorithm(), pulled, lambda error: _rs_controller_error(controller, error)
    )


def _rs_controller_should_call_pull(controller: ReadableStreamDefaultController[Any]) -> bool:
    # ReadableStreamDefaultControllerShouldCallPull.
    stream = controller._stream
    if not _rs_controller_can_close_or_enqueue(controller) or not controller._started:
        return False
    if stream._reader is not None and stream._reader._read_requests:
        return True
    desired_size = _rs_controller_get_desired_size(controller)
    assert desired_size is not None
    return desired_size > 0


def _rs_controller_clear_algorithms(controller: ReadableStreamDefaultController[Any]) -> None:
    # ReadableStreamDefaultControllerClearAlgorithms.
    controller._pull_algorithm = None
    controller._cancel_algorithm = None
    controller._strategy_size = None


def _rs_controller_close(controller: ReadableStreamDefaultController[Any]) -> None:
    # ReadableStreamDefaultControllerClose.
    if not _rs_controller_can_close_or_enqueue(controller):
        return
    controller._close_requested = True
    if not controller._queue.items:
        _rs_controller_clear_algorithms(controller)
        _readable_stream_close(controller._stream)


def _rs_controller_enqueue(controller: ReadableStreamDefaultController[Any], chunk: Any) -> None:
    # ReadableStreamDefaultControllerEnqueue.
    if not _rs_controller_can_close_or_enqueue(controller):
        return
    stream = controller._stream
    reader = stream._reader
    # 4. If the stream is locked and a read waits, fulfill it with the chunk directly. A read
    # the program cancelled is skipped (rule 4): the chunk goes to the next one or the queue.
    if reader is not None:
        while reader._read_requests and reader._read_requests[0].cancelled():
            reader._read_requests.popleft()
    if reader is not None and reader._read_requests:
        _resolve(reader._read_requests.popleft(), ReadResult(chunk, False))
    else:
        # 5. Otherwise queue it with its size; a size that fails errors the stream.
        assert controller._strategy_size is not None
        try:
            chunk_size = controller._strategy_size(chunk)
            controller._queue.enqueue_value_with_size(chunk, chunk_size)
        except Exception as error:
            _rs_controller_error(controller, error)
            raise
    _rs_controller_call_pull_if_needed(controller)


def _rs_controller_error(controller: ReadableStreamDefaultController[Any], e: Any) -> None:
    # ReadableStreamDefaultControllerError.
    stream = controller._stream
    if stream._state != "readable":
        return
    controller._queue.reset_queue()
    _rs_controller_clear_algorithms(controller)
    _readable_stream_error(stream, e)


def _rs_controller_get_desired_size(
    controller: ReadableStreamDefaultController[Any],
) -> float | None:
    # ReadableStreamDefaultControllerGetDesiredSize.
    state = controller._stream._state
    if state == "errored":
        return None
    if state == "closed":
        return 0
    return controller._strategy_hwm - controller._queue.total_size


def _rs_controller_can_close_or_enqueue(controller: ReadableStreamDefaultController[Any]) -> bool:
    # ReadableStreamDefaultControllerCanCloseOrEnqueue.
    return not controller._close_requested and controller._stream._state == "readable"


# -- Writable streams (section 5) ---------------------------------------------------------------

_CLOSE_SENTINEL = object()
"""The queue's close sentinel (section 5.5.4): the close request, queued after the writes."""


class _PendingAbortRequest(NamedTuple):
    promise: asyncio.Future[None]
    reason: Any
    was_already_erroring: bool


class WritableStream(Generic[T]):
    """``WritableStream(underlying_sink=None, strategy=None)``: a destination for chunks
    with backpressure. ``underlying_sink`` has (as a mapping or as attributes)
    ``start(controller)``, ``write(chunk, controller)``, ``close()`` and ``abort(reason)``,
    each optional and each may be ``async``; ``strategy`` has ``highWaterMark`` (default 1)
    and ``size(chunk)``. Made inside a running event loop."""

    __slots__ = (
        "__weakref__",
        "_backpressure",
        "_close_request",
        "_controller",
        "_in_flight_close_request",
        "_in_flight_write_request",
        "_pending_abort_request",
        "_state",
        "_stored_error",
        "_write_requests",
        "_writer",
    )

    def __init__(self, underlying_sink: Any = None, strategy: Any = None) -> None:
        # WritableStream constructor steps (section 5.2.4).
        if _member(underlying_sink, "type") is not None:
            raise ValueError("a writable stream's sink has no type")
        size = _extract_size_algorithm(strategy)
        high_water_mark = _extract_high_water_mark(strategy, 1)
        # InitializeWritableStream.
        self._state = "writable"
        self._stored_error: Any = None
        self._writer: WritableStreamDefaultWriter[T] | None = None
        self._in_flight_write_request: asyncio.Future[None] | None = None
        self._close_request: asyncio.Future[None] | None = None
        self._in_flight_close_request: asyncio.Future[None] | None = None
        self._pending_abort_request: _PendingAbortRequest | None = None
        self._write_requests: deque[asyncio.Future[None]] = deque()
        self._backpressure = False
        controller = WritableStreamDefaultController[T]()
        self._controller = controller
        # SetUpWritableStreamDefaultControllerFromUnderlyingSink.
        start = _member(underlying_sink, "start")
        write = _member(underlying_sink, "write")
        close = _member(underlying_sink, "close")
        abort = _member(underlying_sink, "abort")
        controller._set_up(
            self,
            start_algorithm=_start_algorithm(start, controller),
            write_algorithm=lambda chunk: _promise_call(write, chunk, controller),
            close_algorithm=lambda: _promise_call(close),
            abort_algorithm=lambda reason: _promise_call(abort, reason),
            high_water_mark=high_water_mark,
            size_algorithm=size,
        )

    @property
    def locked(self) -> bool:
        """Whether a writer holds the stream (IsWritableStreamLocked)."""
        return self._writer is not None

    def abort(self, reason: Any = None) -> asyncio.Future[None]:
        """Abort the stream: queued writes are dropped and the sink's ``abort`` runs."""
        if self.locked:
            return _rejected(TypeError("cannot abort a stream that a writer holds"))
        return _writable_stream_abort(self, reason)

    def close(self) -> asyncio.Future[None]:
        """Close the stream once the queued writes are done."""
        if self.locked:
            return _rejected(TypeError("cannot close a stream that a writer holds"))
        if _ws_close_queued_or_in_flight(self):
            return _rejected(TypeError("the stream is closing already"))
        return _writable_stream_close(self)

    def getWriter(self) -> WritableStreamDefaultWriter[T]:
        """A default writer that holds the stream (``TypeError`` if one already does)."""
        return WritableStreamDefaultWriter(self)

    def __repr__(self) -> str:
        return f"<WritableStream {self._state}{' locked' if self.locked else ''}>"


class WritableStreamDefaultWriter(Generic[T]):
    """``WritableStreamDefaultWriter(stream)`` or ``stream.getWriter()``: holds the stream's
    lock and writes to it."""

    __slots__ = ("_closed_promise", "_ready_promise", "_stream")

    def __init__(self, stream: WritableStream[T]) -> None:
        # SetUpWritableStreamDefaultWriter.
        if stream.locked:
            raise TypeError("the stream is locked to a writer already")
        self._stream: WritableStream[T] | None = stream
        stream._writer = self
        state = stream._state
        if state == "writable":
            if not _ws_close_queued_or_in_flight(stream) and stream._backpressure:
                self._ready_promise = _new_promise()
            else:
                self._ready_promise = _resolved()
            self._closed_promise = _new_promise()
        elif state == "erroring":
            self._ready_promise = _rejected(_as_exception(stream._stored_error), handled=True)
            self._closed_promise = _new_promise()
        elif state == "closed":
            self._ready_promise = _resolved()
            self._closed_promise = _resolved()
        else:
            error = _as_exception(stream._stored_error)
            self._ready_promise = _rejected(error, handled=True)
            self._closed_promise = _rejected(error, handled=True)

    @property
    def closed(self) -> asyncio.Future[None]:
        """Resolves when the stream closes, rejects when it errors or the lock is released."""
        if self._closed_promise.cancelled():
            # The program cancelled it (rule 4): a new one tells the same state.
            stream = self._stream
            if stream is None or stream._state == "errored":
                self._closed_promise = _rejected(_writer_error(stream), handled=True)
            elif stream._state == "closed":
                self._closed_promise = _resolved()
            else:
                self._closed_promise = _new_promise()
        return self._closed_promise

    @property
    def ready(self) -> asyncio.Future[None]:
        """Pending while the queue is at or over its high-water mark (backpressure)."""
        if self._ready_promise.cancelled():
            # The program cancelled it (rule 4): a new one tells the same state.
            stream = self._stream
            if stream is None or stream._state in ("erroring", "errored"):
                self._ready_promise = _rejected(_writer_error(stream), handled=True)
            elif stream._backpressure and stream._state == "writable":
                self._ready_promise = _new_promise()
            else:
                self._ready_promise = _resolved()
        return self._ready_promise

    @property
    def desiredSize(self) -> float | None:
        """The high-water mark less the queue's total size; ``None`` once erroring or errored,
        0 once closed. ``TypeError`` after ``releaseLock()``."""
        stream = self._stream
        if stream is None:
            raise TypeError("the writer was released: it has no desired size")
        # WritableStreamDefaultWriterGetDesiredSize.
        if stream._state in ("errored", "erroring"):
            return None
        if stream._state == "closed":
            return 0
        return _ws_controller_get_desired_size(stream._controller)

    def abort(self, reason: Any = None) -> asyncio.Future[None]:
        """Abort the stream (WritableStreamDefaultWriterAbort)."""
        if self._stream is None:
            return _rejected(TypeError("the writer was released: it cannot abort"))
        return _writable_stream_abort(self._stream, reason)

    def close(self) -> asyncio.Future[None]:
        """Close the stream once the queued writes are done."""
        stream = self._stream
        if stream is None:
            return _rejected(TypeError("the writer was released: it cannot close"))
        if _ws_close_queued_or_in_flight(stream):
            return _rejected(TypeError("the stream is closing already"))
        return _writable_stream_close(stream)

    def releaseLock(self) -> None:
        """Release the stream: ``ready`` and ``closed`` reject with ``TypeError``."""
        if self._stream is None:
            return
        _ws_default_writer_release(self)

    def write(self, chunk: T) -> asyncio.Future[None]:
        """Queue ``chunk`` now; the future resolves once the sink has written it. Its
        failure is marked handled (see the module's rule 3)."""
        if self._stream is None:
            return _rejected(TypeError("the writer was released: it cannot write"), handled=True)
        promise = _ws_default_writer_write(self, chunk)
        _mark_handled(promise)
        return promise


def _writer_error(stream: WritableStream[Any] | None) -> BaseException:
    """What a writer's rejected ``ready`` or ``closed`` holds: the stream's stored error, or
    TypeError once the writer was released."""
    if stream is None:
        return TypeError("the writer's lock was released")
    return _as_exception(stream._stored_error)


class WritableStreamDefaultController(Generic[T]):
    """What an underlying sink is given: ``error(e)`` errors the stream."""

    __slots__ = (
        "_abort_algorithm",
        "_close_algorithm",
        "_queue",
        "_started",
        "_strategy_hwm",
        "_strategy_size",
        "_stream",
        "_write_algorithm",
    )

    def _set_up(
        self,
        stream: WritableStream[T],
        *,
        start_algorithm: Callable[[], Any],
        write_algorithm: Callable[[Any], asyncio.Future[Any]],
        close_algorithm: Callable[[], asyncio.Future[Any]],
        abort_algorithm: Callable[[Any], asyncio.Future[Any]],
        high_water_mark: float,
        size_algorithm: Callable[[Any], Any],
    ) -> None:
        # SetUpWritableStreamDefaultController.
        self._stream: WritableStream[T] = stream
        stream._controller = self
        self._queue = _Queue()
        self._started = False
        self._strategy_size: Callable[[Any], Any] | None = size_algorithm
        self._strategy_hwm = high_water_mark
        self._write_algorithm: Callable[[Any], asyncio.Future[Any]] | None = write_algorithm
        self._close_algorithm: Callable[[], asyncio.Future[Any]] | None = close_algorithm
        self._abort_algorithm: Callable[[Any], asyncio.Future[Any]] | None = abort_algorithm
        _ws_update_backpressure(stream, _ws_controller_get_backpressure(self))
        start_promise = _promise_resolve(start_algorithm())

        def started(_: Any) -> None:
            self._started = True
            _ws_controller_advance_queue_if_needed(self)

        def failed(error: BaseException) -> None:
            self._started = True
            _ws_deal_with_rejection(stream, error)

        _upon(start_promise, started, failed)

    def error(self, e: Any = None) -> None:
        """Error the stream (nothing once it is no longer writable)."""
        if self._stream._state != "writable":
            return
        _ws_controller_error(self, e)


# Writable stream abstract operations (section 5.5).


def _writable_stream_abort(stream: WritableStream[Any], reason: Any) -> asyncio.Future[None]:
    # WritableStreamAbort.
    # 1. If stream.[[state]] is "closed" or "errored", return a promise resolved with undefined.
    if stream._state in ("closed", "errored"):
        return _resolved()
    # 5. If stream.[[pendingAbortRequest]] is not undefined, return its promise.
    if stream._pending_abort_request is not None:
        return stream._pending_abort_request.promise
    # 7-8. An abort while erroring keeps the first error: its reason is dropped.
    was_already_erroring = stream._state == "erroring"
    if was_already_erroring:
        reason = None
    promise: asyncio.Future[None] = _new_promise()
    stream._pending_abort_request = _PendingAbortRequest(promise, reason, was_already_erroring)
    # 11. If wasAlreadyErroring is false, perform ! WritableStreamStartErroring(stream, reason).
    if not was_already_erroring:
        _ws_start_erroring(stream, reason)
    return promise


def _writable_stream_close(stream: WritableStream[Any]) -> asyncio.Future[None]:
    # WritableStreamClose.
    if stream._state in ("closed", "errored"):
        return _rejected(TypeError(f"the stream is {stream._state}: it cannot be closed"))
    promise: asyncio.Future[None] = _new_promise()
    stream._close_request = promise
    # 7. If there is a writer, backpressure is on and the stream is writable, resolve ready.
    writer = stream._writer
    if writer is not None and stream._backpressure and stream._state == "writable":
        _resolve(writer._ready_promise)
    # 8. WritableStreamDefaultControllerClose: queue the close sentinel.
    controller = stream._controller
    controller._queue.enqueue_value_with_size(_CLOSE_SENTINEL, 0)
    _ws_controller_advance_queue_if_needed(controller)
    return promise


def _ws_deal_with_rejection(stream: WritableStream[Any], error: Any) -> None:
    # WritableStreamDealWithRejection.
    if stream._state == "writable":
        _ws_start_erroring(stream, error)
        return
    _ws_finish_erroring(stream)


def _ws_start_erroring(stream: WritableStream[Any], reason: Any) -> None:
    # WritableStreamStartErroring.
    controller = stream._controller
    stream._state = "erroring"
    stream._stored_error = reason
    writer = stream._writer
    if writer is not None:
        _ws_writer_ensure_ready_promise_rejected(writer, reason)
    if not _ws_has_operation_marked_in_flight(stream) and controller._started:
        _ws_finish_erroring(stream)


def _ws_finish_erroring(stream: WritableStream[Any]) -> None:
    # WritableStreamFinishErroring.
    stream._state = "errored"
    stream._controller._queue.reset_queue()
    stored_error = _as_exception(stream._stored_error)
    requests, stream._write_requests = stream._write_requests, deque()
    for request in requests:
        _reject(request, stored_error)
    abort_request = stream._pending_abort_request
    if abort_request is None:
        _ws_reject_close_and_closed_promise_if_needed(stream)
        return
    stream._pending_abort_request = None
    if abort_request.was_already_erroring:
        _reject(abort_request.promise, stored_error)
        _ws_reject_close_and_closed_promise_if_needed(stream)
        return
    # 12. Let promise be controller.[[AbortSteps]](abortRequest's reason).
    controller = stream._controller
    abort = controller._abort_algorithm
    promise = abort(abort_request.reason) if abort is not None else _resolved()
    _ws_controller_clear_algorithms(controller)

    def aborted(_: Any) -> None:
        _resolve(abort_request.promise)
        _ws_reject_close_and_closed_promise_if_needed(stream)

    def abort_failed(reason: BaseException) -> None:
        _reject(abort_request.promise, reason)
        _ws_reject_close_and_closed_promise_if_needed(stream)

    _upon(promise, aborted, abort_failed)


def _ws_finish_in_flight_write(stream: WritableStream[Any]) -> None:
    # WritableStreamFinishInFlightWrite.
    assert stream._in_flight_write_request is not None
    _resolve(stream._in_flight_write_request)
    stream._in_flight_write_request = None


def _ws_finish_in_flight_write_with_error(stream: WritableStream[Any], error: Any) -> None:
    # WritableStreamFinishInFlightWriteWithError.
    assert stream._in_flight_write_request is not None
    _reject(stream._in_flight_write_request, _as_exception(error))
    stream._in_flight_write_request = None
    _ws_deal_with_rejection(stream, error)


def _ws_finish_in_flight_close(stream: WritableStream[Any]) -> None:
    # WritableStreamFinishInFlightClose.
    assert stream._in_flight_close_request is not None
    _resolve(stream._in_flight_close_request)
    stream._in_flight_close_request = None
    # 6. A close that completes while erroring wins: the error and the abort are dropped.
    if stream._state == "erroring":
        stream._stored_error = None
        if stream._pending_abort_request is not None:
            _resolve(stream._pending_abort_request.promise)
            stream._pending_abort_request = None
    stream._state = "closed"
    if stream._writer is not None:
        _resolve(stream._writer._closed_promise)


def _ws_finish_in_flight_close_with_error(stream: WritableStream[Any], error: Any) -> None:
    # WritableStreamFinishInFlightCloseWithError.
    assert stream._in_flight_close_request is not None
    _reject(stream._in_flight_close_request, _as_exception(error))
    stream._in_flight_close_request = None
    if stream._pending_abort_request is not None:
        _reject(stream._pending_abort_request.promise, _as_exception(error))
        stream._pending_abort_request = None
    _ws_deal_with_rejection(stream, error)


def _ws_close_queued_or_in_flight(stream: WritableStream[Any]) -> bool:
    # WritableStreamCloseQueuedOrInFlight.
    return stream._close_request is not None or stream._in_flight_close_request is not None


def _ws_has_operation_marked_in_flight(stream: WritableStream[Any]) -> bool:
    # WritableStreamHasOperationMarkedInFlight.
    return (
        stream._in_flight_write_request is not None or stream._in_flight_close_request is not None
    )


def _ws_reject_close_and_closed_promise_if_needed(stream: WritableStream[Any]) -> None:
    # WritableStreamRejectCloseAndClosedPromiseIfNeeded.
    error = _as_exception(stream._stored_error)
    if stream._close_request is not None:
        _reject(stream._close_request, error)
        stream._close_request = None
    if stream._writer is not None:
        _reject(stream._writer._closed_promise, error, handled=True)


def _ws_update_backpressure(stream: WritableStream[Any], backpressure: bool) -> None:
    # WritableStreamUpdateBackpressure: a new pending ready when backpressure starts, resolved
    # when it ends.
    writer = stream._writer
    if writer is not None and backpressure != stream._backpressure:
        if backpressure:
            writer._ready_promise = _new_promise()
        else:
            _resolve(writer._ready_promise)
    stream._backpressure = backpressure


def _ws_writer_ensure_ready_promise_rejected(
    writer: WritableStreamDefaultWriter[Any], error: Any
) -> None:
    # WritableStreamDefaultWriterEnsureReadyPromiseRejected.
    if writer._ready_promise.done():
        writer._ready_promise = _new_promise()
    _reject(writer._ready_promise, _as_exception(error), handled=True)


def _ws_writer_ensure_closed_promise_rejected(
    writer: WritableStreamDefaultWriter[Any], error: Any
) -> None:
    # WritableStreamDefaultWriterEnsureClosedPromiseRejected.
    if writer._closed_promise.done():
        writer._closed_promise = _new_promise()
    _reject(writer._closed_promise, _as_exception(error), handled=True)


def _ws_default_writer_release(writer: WritableStreamDefaultWriter[Any]) -> None:
    # WritableStreamDefaultWriterRelease.
    stream = writer._stream
    assert stream is not None
    released = TypeError("the writer's lock was released")
    _ws_writer_ensure_ready_promise_rejected(writer, released)
    _ws_writer_ensure_closed_promise_rejected(writer, released)
    stream._writer = None
    writer._stream = None


def _ws_default_writer_write(
    writer: WritableStreamDefaultWriter[Any], chunk: Any
) -> asyncio.Future[None]:
    # WritableStreamDefaultWriterWrite.
    stream = writer._stream
    assert stream is not None
    controller = stream._controller
    chunk_size = _ws_controller_get_chunk_size(controller, chunk)
    # 4. If stream is not equal to writer.[[stream]], the size algorithm released the lock.
    if stream is not writer._stream:
        return _rejected(TypeError("the writer was released while sizing the chunk"))
    state = stream._state
    if state == "errored":
        return _rejected(_as_exception(stream._stored_error))
    if _ws_close_queued_or_in_flight(stream) or state == "closed":
        return _rejected(TypeError("the stream is closing or closed: it cannot be written to"))
    if state == "erroring":
        return _rejected(_as_exception(stream._stored_error))
    # 10. WritableStreamAddWriteRequest, then WritableStreamDefaultControllerWrite.
    promise: asyncio.Future[None] = _new_promise()
    stream._write_requests.append(promise)
    _ws_controller_write(controller, chunk, chunk_size)
    return promise


def _ws_writer_close_with_error_propagation(
    writer: WritableStreamDefaultWriter[Any],
) -> asyncio.Future[None]:
    # WritableStreamDefaultWriterCloseWithErrorPropagation.
    stream = writer._stream
    assert stream is not None
    if _ws_close_queued_or_in_flight(stream) or stream._state == "closed":
        return _resolved()
    if stream._state == "errored":
        return _rejected(_as_exception(stream._stored_error))
    return _writable_stream_close(stream)


def _ws_controller_advance_queue_if_needed(
    controller: WritableStreamDefaultController[Any],
) -> None:
    # WritableStreamDefaultControllerAdvanceQueueIfNeeded.
    stream = controller._stream
    if not controller._started or stream._in_flight_write_request is not None:
        return
    if stream._state == "erroring":
        _ws_finish_erroring(stream)
        return
    if not controller._queue.items:
        return
    value = controller._queue.peek_queue_value()
    if value is _CLOSE_SENTINEL:
        _ws_controller_process_close(controller)
    else:
        _ws_controller_process_write(controller, value)


def _ws_controller_clear_algorithms(controller: WritableStreamDefaultController[Any]) -> None:
    # WritableStreamDefaultControllerClearAlgorithms.
    controller._write_algorithm = None
    controller._close_algorithm = None
    controller._abort_algorithm = None
    controller._strategy_size = None


def _ws_controller_error(controller: WritableStreamDefaultController[Any], error: Any) -> None:
    # WritableStreamDefaultControllerError.
    _ws_controller_clear_algorithms(controller)
    _ws_start_erroring(controller._stream, error)


def _ws_controller_error_if_needed(
    controller: WritableStreamDefaultController[Any], error: Any
) -> None:
    # WritableStreamDefaultControllerErrorIfNeeded.
    if controller._stream._state == "writable":
        _ws_controller_error(controller, error)


def _ws_controller_get_backpressure(controller: WritableStreamDefaultController[Any]) -> bool:
    # WritableStreamDefaultControllerGetBackpressure.
    return _ws_controller_get_desired_size(controller) <= 0


def _ws_controller_get_chunk_size(
    controller: WritableStreamDefaultController[Any], chunk: Any
) -> Any:
    # WritableStreamDefaultControllerGetChunkSize: a size that fails errors the stream and
    # counts 1.
    if controller._strategy_size is None:
        return 1
    try:
        return controller._strategy_size(chunk)
    except Exception as error:
        _ws_controller_error_if_needed(controller, error)
        return 1


def _ws_controller_get_desired_size(controller: WritableStreamDefaultController[Any]) -> float:
    # WritableStreamDefaultControllerGetDesiredSize.
    return controller._strategy_hwm - controller._queue.total_size


def _ws_controller_process_close(controller: WritableStreamDefaultController[Any]) -> None:
    # WritableStreamDefaultControllerProcessClose.
    stream = controller._stream
    # WritableStreamMarkCloseRequestInFlight.
    stream._in_flight_close_request, stream._close_request = stream._close_request, None
    controller._queue.dequeue_value()
    close = controller._close_algorithm
    sink_close_promise = close() if close is not None else _resolved()
    _ws_controller_clear_algorithms(controller)
    _upon(
        sink_close_promise,
        lambda _: _ws_finish_in_flight_close(stream),
        lambda reason: _ws_finish_in_flight_close_with_error(stream, reason),
    )


def _ws_controller_process_write(
    controller: WritableStreamDefaultController[Any], chunk: Any
) -> None:
    # WritableStreamDefaultControllerProcessWrite.
    stream = controller._stream
    # WritableStreamMarkFirstWriteRequestInFlight.
    stream._in_flight_write_request = stream._write_requests.popleft()
    assert controller._write_algorithm is not None

    def written(_: Any) -> None:
        _ws_finish_in_flight_write(stream)
        controller._queue.dequeue_value()
        if not _ws_close_queued_or_in_flight(stream) and stream._state == "writable":
            _ws_update_backpressure(stream, _ws_controller_get_backpressure(controller))
        _ws_controller_advance_queue_if_needed(controller)

    def failed(reason: BaseException) -> None:
        if stream._state == "writable":
            _ws_controller_clear_algorithms(controller)
        _ws_finish_in_flight_write_with_error(stream, reason)

    _upon(controller._write_algorithm(chunk), written, failed)


def _ws_controller_write(
    controller: WritableStreamDefaultController[Any], chunk: Any, chunk_size: Any
) -> None:
    # WritableStreamDefaultControllerWrite.
    try:
        controller._queue.enqueue_value_with_size(chunk, chunk_size)
    except Exception as error:
        _ws_controller_error_if_needed(controller, error)
        return
    stream = controller._stream
    if not _ws_close_queued_or_in_flight(stream) and stream._state == "writable":
        _ws_update_backpressure(stream, _ws_controller_get_backpressure(controller))
    _ws_controller_advance_queue_if_needed(controller)


# -- Piping (section 4.9.1, ReadableStreamPipeTo) -------------------------------------------------


def _readable_stream_pipe_to(
    source: ReadableStream[Any],
    dest: WritableStream[Any],
    *,
    prevent_close: bool,
    prevent_abort: bool,
    prevent_cancel: bool,
    signal: Any,
) -> asyncio.Future[None]:
    # ReadableStreamPipeTo steps 1-13: the reader and the writer are acquired now; the rest
    # runs "in parallel", as a task.
    pipe = _Pipe(source, dest, prevent_close, prevent_abort, prevent_cancel)
    source._disturbed = True
    return asyncio.ensure_future(pipe.run(signal))


_Action = Callable[[], "asyncio.Future[None]"]


class _Pipe:
    """The state of one ReadableStreamPipeTo: both locks, the options, the last write."""

    __slots__ = ("dest", "options", "reader", "source", "writer")

    def __init__(
        self, source: ReadableStream[Any], dest: WritableStream[Any], *options: bool
    ) -> None:
        self.source = source
        self.dest = dest
        self.reader = ReadableStreamDefaultReader(source)
        self.writer = WritableStreamDefaultWriter(dest)
        self.options = options  # preventClose, preventAbort, preventCancel

    def abort_algorithm(self, reason: Any) -> tuple[list[_Action], BaseException]:
        # Step 14.1, the abortAlgorithm: abort the destination and cancel the source with
        # the signal's reason, each unless prevented (and only while it is still open).
        _, prevent_abort, prevent_cancel = self.options
        source, dest = self.source, self.dest
        if reason is None:
            reason = DOMException("the pipe was aborted", "AbortError")
        actions: list[_Action] = []
        if not prevent_abort:
            actions.append(
                lambda: (
                    _writable_stream_abort(dest, reason)
                    if dest._state == "writable"
                    else _resolved()
                )
            )
        if not prevent_cancel:
            actions.append(
                lambda: (
                    _readable_stream_cancel(source, reason)
                    if source._state == "readable"
                    else _resolved()
                )
            )
        return actions, _as_exception(reason)

    def shutdown_needed(self) -> tuple[list[_Action], BaseException | None] | None:
        """Step 15's conditions, checked after every step of the pipe: the actions to shut
        down with and the error to end with, or None while the pipe goes on."""
        prevent_close, prevent_abort, prevent_cancel = self.options
        source, dest, writer = self.source, self.dest, self.writer
        # Errors must be propagated forward: the source errored.
        if source._state == "errored":
            error = source._stored_error
            abort = [] if prevent_abort else [lambda: _writable_stream_abort(dest, error)]
            return abort, _as_exception(error)
        # Errors must be propagated backward: the destination errored.
        if dest._state == "errored":
            error = dest._stored_error
            cancel = [] if prevent_cancel else [lambda: _readable_stream_cancel(source, error)]
            return cancel, _as_exception(error)
        # Closing must be propagated forward: the source closed.
        if source._state == "closed":
            close = (
                [] if prevent_close else [lambda: _ws_writer_close_with_error_propagation(writer)]
            )
            return close, None
        # Closing must be propagated backward: the destination is closing or closed.
        if _ws_close_queued_or_in_flight(dest) or dest._state == "closed":
            closed = TypeError("the destination was closed while piping")
            cancel = [] if prevent_cancel else [lambda: _readable_stream_cancel(source, closed)]
            return cancel, closed
        return None

    async def run(self, signal: Any) -> None:
        """Read from the source while the destination wants more, write what was read, and
        shut down as step 15 says; finalize (release both locks) in every case."""
        reader, writer, dest = self.reader, self.writer, self.dest
        aborted: asyncio.Future[None] = _new_promise()

        def on_abort(event: Any = None) -> None:
            _resolve(aborted)

        if signal is not None:
            signal.addEventListener("abort", on_abort)
        current_write: asyncio.Future[None] = _resolved()
        read_request: asyncio.Future[ReadResult] | None = None
        try:
            while True:
                shutdown: tuple[list[_Action], BaseException | None] | None
                if signal is not None and (signal.aborted or aborted.done()):
                    shutdown = self.abort_algorithm(signal.reason)
                else:
                    shutdown = self.shutdown_needed()
                if shutdown is not None:
                    await _shutdown(dest, current_write, *shutdown)
                    return
                # Read only while the destination wants more: its ready promise fulfilled (a
                # rejected one, while erroring, waits for closed to reject once errored).
                ready = writer._ready_promise
                if read_request is None and dest._state == "writable" and ready.done():
                    read_request = reader.read()
                    _mark_handled(read_request)
                waits = [aborted, reader._closed_promise, writer._closed_promise]
                if read_request is not None:
                    waits.append(read_request)
                elif not ready.done():
                    waits.append(ready)
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if read_request is not None and read_request.done():
                    if read_request.exception() is None:
                        value, done = read_request.result()
                        if not done:
                            current_write = _ws_default_writer_write(writer, value)
                            _mark_handled(current_write)
                    read_request = None
        finally:
            # Finalize: release both locks and forget the signal.
            if signal is not None:
                signal.removeEventListener("abort", on_abort)
            if writer._stream is not None:
                _ws_default_writer_release(writer)
            if reader._stream is not None:
                _rs_default_reader_release(reader)


async def _shutdown(
    dest: WritableStream[Any],
    current_write: asyncio.Future[None],
    actions: list[_Action],
    error: BaseException | None,
) -> None:
    """ "Shutdown with an action": wait for the chunks already read to be written (while the
    destination can take them), then run the actions and wait for them all; the pipe then
    fails with the first action's failure, else with ``error`` (None: it succeeds)."""
    if dest._state == "writable" and not _ws_close_queued_or_in_flight(dest):
        await asyncio.wait([current_write])
    promises = [action() for action in actions]
    for promise in promises:
        _mark_handled(promise)
    if promises:
        await asyncio.wait(promises)
        for promise in promises:
            failure = promise.exception()
            if failure is not None:
                raise failure
    if error is not None:
        raise error
