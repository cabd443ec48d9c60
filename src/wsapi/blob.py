"""The File API's ``Blob``: immutable binary data, the default type of a received binary message.

Reference: W3C File API, "The Blob Interface and Binary Data"
(https://w3c.github.io/FileAPI/#blob-section). The IDL names (``size``, ``type``, ``slice``,
``arrayBuffer``, ``text``, ``bytes``, ``stream``) are the specification's; ``arrayBuffer()`` and
``bytes()`` both give ``bytes``, Python's immutable byte string.

Storage. A Blob is a tuple of immutable segments, each a window on either an in-memory
``bytes`` object or a range of a spooled temporary file. ``slice()`` and a Blob built from other
Blobs share the segments (nothing is copied), so slicing a 60 MiB message costs nothing. The
WebSocket specification invites a user agent to keep "blob" data on disk; ``BlobBuilder``
accumulates a received message in memory up to ``SPOOL_THRESHOLD`` bytes and in a
``tempfile.TemporaryFile`` past it. The file is closed, and so deleted, when the last Blob (or
stream, or builder) referring to it is garbage-collected: a ``weakref.finalize`` on the shared
``_SpoolFile`` object does it, so no "unclosed file" ``ResourceWarning`` is ever emitted.

Reading. In-memory data is read on the event loop's thread. File data is read on the loop's
thread when one read takes at most ``INLINE_READ_LIMIT`` bytes (a 64 KiB read from the page
cache takes microseconds, less than the hop to a worker thread), and in a worker thread
(``asyncio.to_thread``) when it takes more, so that a large read never stalls the loop.

Library-internal API (used by the WebSocket layer, not part of the IDL):

- ``BlobBuilder`` (``append(fragment)``, ``build(type)``, ``discard()``): a received message in
  "blob" mode, fragment by fragment.
- ``Blob._from_bytes(data, type="")``: a Blob over bytes already in memory, without a copy.
- ``Blob._spooled(chunks_or_bytes, threshold=SPOOL_THRESHOLD, type="")``: a BlobBuilder in one
  call.
- ``Blob._read_all()``: all the bytes, synchronously (from a worker thread when
  ``Blob._file_backed`` is true and the Blob is large), for ``send(blob)``.
"""

from __future__ import annotations

import asyncio
import builtins
import math
import os
import re
import tempfile
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Literal, TypeAlias

from .webidl import usv_utf8

__all__ = ["INLINE_READ_LIMIT", "SPOOL_THRESHOLD", "STREAM_CHUNK_SIZE", "Blob", "BlobBuilder"]

SPOOL_THRESHOLD = 1024 * 1024
"""A received binary message larger than this (1 MiB) is kept in a temporary file rather than
in memory. The WebSocket specification lets a user agent spool "blob" data to disk; 1 MiB keeps
the common small messages in memory (no file descriptor, no system call) while a burst of large
messages, up to the 64 MiB message limit each, does not pile up in RAM."""

STREAM_CHUNK_SIZE = 64 * 1024
"""The size of each chunk ``Blob.stream()`` yields (the last one may be shorter): a common I/O
size, few enough chunks for a large Blob, and small enough to read on the loop's thread."""

INLINE_READ_LIMIT = 64 * 1024
"""A read of file-backed data of at most this many bytes runs on the event loop's thread;
a larger one runs in a worker thread. Below this size the thread hop costs more than the
read."""

BlobPart: TypeAlias = "str | bytes | bytearray | memoryview | Blob"
"""What a Blob is built from (the IDL's ``BlobPart``: ``BufferSource or Blob or USVString``)."""

_LONG_LONG_MIN = -(2**63)
_LONG_LONG_MAX = 2**63 - 1
_LINE_ENDING = re.compile(r"\r\n|\r|\n")


class _SpoolFile:
    """A temporary file holding spooled Blob data, shared by every segment cut from it.

    The file is written once (by a ``BlobBuilder``) and then only read, from the loop's thread
    or from worker threads; the lock makes each seek-and-read atomic. The finalizer closes the
    file, which deletes it, when this object is garbage-collected, that is when no segment,
    Blob, stream or builder refers to it any more (or at interpreter exit).
    """

    __slots__ = ("__weakref__", "_file", "_finalizer", "_lock", "size")

    def __init__(self) -> None:
        # Unbuffered: reads and writes go straight to the OS, so there is no buffer to flush
        # between the writing phase and the reading phase.
        # Not a `with` block: the file lives as long as the Blobs that share it, and the
        # finalizer below closes it.
        self._file = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115
        self._finalizer = weakref.finalize(self, self._file.close)
        self._lock = threading.Lock()
        self.size = 0

    def append(self, data: bytes | memoryview) -> None:
        """Write ``data`` at the end of the file."""
        with self._lock:
            self._file.seek(self.size)
            view = memoryview(data)
            while view:
                # A raw file may write less than asked.
                written = self._file.write(view)
                view = view[written:]
            self.size += len(data)

    def read(self, offset: int, length: int) -> bytes:
        """Return ``length`` bytes from ``offset``."""
        with self._lock:
            self._file.seek(offset)
            pieces = []
            while length > 0:
                piece = self._file.read(length)
                if not piece:
                    raise OSError(f"spooled Blob data truncated at {offset}")
                pieces.append(piece)
                offset += len(piece)
                length -= len(piece)
        return b"".join(pieces)

    def close(self) -> None:
        """Close (and delete) the file now; used when a builder is abandoned."""
        self._finalizer()


class _Segment:
    """An immutable window ``[start, stop)`` on in-memory bytes or on a spooled file."""

    __slots__ = ("source", "start", "stop")

    def __init__(self, source: bytes | _SpoolFile, start: int, stop: int) -> None:
        self.source = source
        self.start = start
        self.stop = stop

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def in_file(self) -> bool:
        return isinstance(self.source, _SpoolFile)

    def cut(self, start: int, stop: int) -> _Segment:
        """The sub-window ``[start, stop)``, relative to this segment; shares the source."""
        if start == 0 and stop == self.size:
            return self
        return _Segment(self.source, self.start + start, self.start + stop)

    def read(self, start: int, stop: int) -> bytes:
        """The bytes of ``[start, stop)``, relative to this segment."""
        if isinstance(self.source, bytes):
            # Slicing a whole bytes object returns it without a copy.
            return self.source[self.start + start : self.start + stop]
        return self.source.read(self.start + start, stop - start)


_EMPTY: tuple[_Segment, ...] = ()


def _byte_view(data: bytes | bytearray | memoryview) -> memoryview:
    """A flat view of the bytes of ``data`` (a copy only for a non-contiguous view)."""
    view = memoryview(data)
    return view.cast("B") if view.c_contiguous else memoryview(view.tobytes())


def _read_spans(spans: list[tuple[_Segment, int, int]]) -> bytes:
    """Join the bytes of the given (segment, start, stop) spans. Blocking for file segments."""
    if len(spans) == 1:
        segment, start, stop = spans[0]
        return segment.read(start, stop)
    return b"".join(segment.read(start, stop) for segment, start, stop in spans)


async def _read_spans_async(spans: list[tuple[_Segment, int, int]]) -> bytes:
    """``_read_spans``, in a worker thread when it reads more than INLINE_READ_LIMIT bytes
    from a file."""
    from_file = sum(stop - start for segment, start, stop in spans if segment.in_file)
    if from_file > INLINE_READ_LIMIT:
        return await asyncio.to_thread(_read_spans, spans)
    return _read_spans(spans)


def _spans(segments: tuple[_Segment, ...]) -> list[tuple[_Segment, int, int]]:
    return [(segment, 0, segment.size) for segment in segments]


def _normalize_type(value: object, name: str) -> str:
    """The File API's type rule (Blob constructor step 3, slice step 3): a type with a
    character outside U+0020-U+007E becomes the empty string, any other is ASCII-lowercased."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if any(not " " <= char <= "~" for char in value):
        return ""
    # Every character is ASCII here, so str.lower() is ASCII lowercase.
    return value.lower()


def _clamp_long_long(value: object, name: str) -> int:
    """WebIDL ``[Clamp] long long`` conversion of a ``slice()`` argument: ints and floats are
    clamped to the 64-bit range, floats rounded half to even, NaN becomes 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if isinstance(value, float) and math.isnan(value):
        return 0
    return round(min(max(value, _LONG_LONG_MIN), _LONG_LONG_MAX))


class Blob:
    """Immutable binary data with a MIME type: the File API's ``Blob``.

    ``Blob(parts=(), options=None, *, type="")``: ``parts`` is an iterable of ``str`` (encoded
    as UTF-8, lone surrogates replaced by U+FFFD), ``bytes``, ``bytearray``, ``memoryview``
    (only the view's bytes) or ``Blob``; byte data is copied, so changing the source later does
    not change the Blob. ``options`` is the IDL's ``BlobPropertyBag``, a mapping with ``"type"``
    and ``"endings"`` (``"transparent"`` or ``"native"``: convert the line endings of ``str``
    parts to ``os.linesep``); the keyword ``type`` is the Pythonic spelling of the first.

    Two Blobs are equal only if they are the same object, as on the web.
    """

    __slots__ = ("__weakref__", "_segments", "_size", "_type")

    _segments: tuple[_Segment, ...]
    _size: int
    _type: str

    def __init__(
        self,
        parts: Iterable[BlobPart] | None = (),
        options: Mapping[str, object] | None = None,
        *,
        type: str = "",
    ) -> None:
        endings: object = "transparent"
        type_value: object = type
        if options is not None:
            if not isinstance(options, Mapping):
                raise TypeError(
                    f"options must be a mapping, not {builtins.type(options).__name__}"
                )
            if "type" in options:
                if type:
                    raise TypeError("the type is given both in options and as a keyword")
                type_value = options["type"]
            endings = options.get("endings", "transparent")
        if endings not in ("transparent", "native"):
            raise TypeError(f"endings must be 'transparent' or 'native', not {endings!r}")
        normalized_type = _normalize_type(type_value, "type")
        # "Process blob parts" (File API 3.1.1).
        if parts is None:
            parts = ()
        if isinstance(parts, (str, bytes, bytearray, memoryview, Blob)):
            raise TypeError(
                f"parts must be an iterable of parts, not a single {builtins.type(parts).__name__}"
            )
        try:
            iterator = iter(parts)
        except TypeError:
            raise TypeError(
                f"parts must be an iterable, not {builtins.type(parts).__name__}"
            ) from None
        segments: list[_Segment] = []
        pending: list[bytes] = []  # consecutive byte parts, joined into one segment

        def flush() -> None:
            if pending:
                data = b"".join(pending)
                segments.append(_Segment(data, 0, len(data)))
                pending.clear()

        for part in iterator:
            if isinstance(part, str):
                text = _LINE_ENDING.sub(os.linesep, part) if endings == "native" else part
                chunk = usv_utf8(text)
            elif isinstance(part, builtins.bytes):
                # bytes() of an exact bytes object is the object itself: no copy of immutable data.
                chunk = builtins.bytes(part)
            elif isinstance(part, (bytearray, memoryview)):
                # A copy of the view's window only, taken now.
                chunk = part.tobytes() if isinstance(part, memoryview) else builtins.bytes(part)
            elif isinstance(part, Blob):
                flush()
                segments.extend(part._segments)
                continue
            else:
                raise TypeError(
                    "a Blob part must be str, bytes, bytearray, memoryview or Blob, not "
                    f"{builtins.type(part).__name__}"
                )
            if chunk:
                pending.append(chunk)
        flush()
        self._segments = tuple(segments)
        self._size = sum(segment.size for segment in segments)
        self._type = normalized_type

    @staticmethod
    def _from_segments(segments: tuple[_Segment, ...], type: str) -> Blob:
        blob = Blob.__new__(Blob)
        blob._segments = tuple(segment for segment in segments if segment.size)
        blob._size = sum(segment.size for segment in blob._segments)
        blob._type = _normalize_type(type, "type")
        return blob

    @classmethod
    def _from_bytes(
        cls,
        data: builtins.bytes | bytearray | memoryview,
        type: str = "",
    ) -> Blob:
        """Library-internal: a Blob holding ``data`` in memory (``bytes`` is not copied)."""
        if isinstance(data, memoryview):
            data = data.tobytes()
        elif builtins.type(data) is not builtins.bytes:
            data = builtins.bytes(data)
        return cls._from_segments((_Segment(data, 0, len(data)),), type)

    @classmethod
    def _spooled(
        cls,
        data: builtins.bytes
        | bytearray
        | memoryview
        | Iterable[builtins.bytes | bytearray | memoryview],
        threshold: int = SPOOL_THRESHOLD,
        type: str = "",
    ) -> Blob:
        """Library-internal: a Blob of ``data`` (bytes or an iterable of chunks), kept in a
        temporary file if it is larger than ``threshold`` bytes."""
        builder = BlobBuilder(threshold)
        if isinstance(data, (builtins.bytes, bytearray, memoryview)):
            builder.append(data)
        else:
            for chunk in data:
                builder.append(chunk)
        return builder.build(type)

    @property
    def size(self) -> int:
        """The length of the data, in bytes."""
        return self._size

    @property
    def type(self) -> str:
        """The MIME type, ASCII-lowercased, or ``""`` if unknown."""
        return self._type

    @property
    def _file_backed(self) -> bool:
        """Library-internal: whether some of the data lives in a temporary file (so reading it
        all blocks on disk I/O and belongs in a worker thread when it is large)."""
        return any(segment.in_file for segment in self._segments)

    def slice(
        self,
        start: int | float | None = 0,
        end: int | float | None = None,
        contentType: str | None = "",
    ) -> Blob:
        """A new Blob with the bytes from ``start`` to ``end`` (exclusive) and the type
        ``contentType``. Negative indices count from the end; both are clamped to the size; an
        ``end`` before ``start`` gives an empty Blob. The data is shared, not copied."""
        size = self._size
        # File API 3.3.1 step 1: relativeStart.
        start = 0 if start is None else _clamp_long_long(start, "start")
        relative_start = max(size + start, 0) if start < 0 else min(start, size)
        # Step 2: relativeEnd.
        end = size if end is None else _clamp_long_long(end, "end")
        relative_end = max(size + end, 0) if end < 0 else min(end, size)
        # Step 3: relativeContentType.
        relative_content_type = _normalize_type(contentType, "contentType")
        # Step 4: span.
        span = max(relative_end - relative_start, 0)
        stop = relative_start + span
        segments: list[_Segment] = []
        position = 0
        for segment in self._segments:
            next_position = position + segment.size
            if next_position > relative_start and position < stop:
                segments.append(
                    segment.cut(
                        max(relative_start - position, 0), min(stop, next_position) - position
                    )
                )
            position = next_position
            if position >= stop:
                break
        return Blob._from_segments(tuple(segments), relative_content_type)

    async def arrayBuffer(self) -> builtins.bytes:
        """All the data, as ``bytes``."""
        return await _read_spans_async(_spans(self._segments))

    async def bytes(self) -> builtins.bytes:
        """All the data, as ``bytes`` (the File API's newer ``bytes()``, which gives a
        ``Uint8Array`` on the web)."""
        return await _read_spans_async(_spans(self._segments))

    async def text(self) -> str:
        """The data decoded as UTF-8 (the Encoding standard's "UTF-8 decode": a leading BOM is
        dropped, malformed bytes become U+FFFD)."""
        data = await _read_spans_async(_spans(self._segments))
        return data.decode("utf-8-sig", "replace")

    def stream(self) -> BlobStream:
        """An async iterator over the data, in ``bytes`` chunks of ``STREAM_CHUNK_SIZE`` (the
        last one shorter). An empty Blob yields no chunk."""
        return BlobStream(self._segments)

    def _read_all(self) -> builtins.bytes:
        """Library-internal: all the data, synchronously. Blocks on disk I/O when
        ``_file_backed``; a caller on the event loop runs it in a worker thread then."""
        return _read_spans(_spans(self._segments))

    def __repr__(self) -> str:
        return f"<Blob size={self._size} type={self._type!r}>"


class BlobStream:
    """The async iterator ``Blob.stream()`` returns: chunks of ``STREAM_CHUNK_SIZE`` bytes.

    A class rather than an async generator, so that a stream abandoned half-way needs no
    ``aclose()`` and leaves nothing for the event loop to finalize.
    """

    __slots__ = ("_index", "_offset", "_segments")

    def __init__(self, segments: tuple[_Segment, ...]) -> None:
        self._segments = segments
        self._index = 0
        self._offset = 0

    def __aiter__(self) -> BlobStream:
        return self

    async def __anext__(self) -> bytes:
        spans: list[tuple[_Segment, int, int]] = []
        wanted = STREAM_CHUNK_SIZE
        while wanted and self._index < len(self._segments):
            segment = self._segments[self._index]
            stop = min(segment.size, self._offset + wanted)
            spans.append((segment, self._offset, stop))
            wanted -= stop - self._offset
            if stop == segment.size:
                self._index += 1
                self._offset = 0
            else:
                self._offset = stop
        if not spans:
            self._segments = _EMPTY  # let go of the data
            raise StopAsyncIteration
        return await _read_spans_async(spans)


class BlobBuilder:
    """Library-internal: accumulates a received binary message into a Blob, fragment by
    fragment, in memory up to ``threshold`` bytes and in a temporary file past it.

    Writing to the temporary file happens on the caller's thread: fragments are at most a
    read's worth of bytes and land in the page cache, so the write does not stall the loop.
    ``build()`` ends the builder; ``discard()`` drops what was received (a failed connection)
    and closes the file at once.
    """

    __slots__ = ("_chunks", "_file", "_size", "_state", "threshold")

    def __init__(self, threshold: int = SPOOL_THRESHOLD) -> None:
        self.threshold = threshold
        self._chunks: list[bytes] = []
        self._file: _SpoolFile | None = None
        self._size = 0
        self._state: Literal["open", "built", "discarded"] = "open"

    @property
    def size(self) -> int:
        """The number of bytes received so far."""
        return self._size

    @property
    def spooled(self) -> bool:
        """Whether the data has moved to a temporary file."""
        return self._file is not None

    def append(self, fragment: bytes | bytearray | memoryview) -> None:
        """Add ``fragment`` (copied unless it is ``bytes``) to the message."""
        if self._state != "open":
            raise RuntimeError(f"the BlobBuilder is {self._state}")
        view = _byte_view(fragment)
        if not view:
            return
        size = self._size + len(view)
        if self._file is not None:
            self._file.append(view)
        elif size > self.threshold:
            # Past the threshold: move what is in memory to a new temporary file.
            spool = _SpoolFile()
            for chunk in self._chunks:
                spool.append(chunk)
            spool.append(view)
            self._chunks = []
            self._file = spool
        else:
            self._chunks.append(fragment if type(fragment) is bytes else view.tobytes())
        self._size = size

    def build(self, type: str = "") -> Blob:
        """The Blob of everything appended; the builder cannot be used afterwards."""
        if self._state != "open":
            raise RuntimeError(f"the BlobBuilder is {self._state}")
        self._state = "built"
        if self._file is not None:
            source: bytes | _SpoolFile = self._file
            self._file = None
        else:
            source = b"".join(self._chunks)
            self._chunks = []
        return Blob._from_segments((_Segment(source, 0, self._size),), type)

    def discard(self) -> None:
        """Drop the data received so far and delete the temporary file, if any."""
        if self._state == "open":
            self._state = "discarded"
            self._chunks = []
            if self._file is not None:
                self._file.close()
                self._file = None
