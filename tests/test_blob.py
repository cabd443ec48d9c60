"""Blob: construction, type rules, slice(), reading, and spooling to a temporary file."""

from __future__ import annotations

import array
import asyncio
import gc
import inspect
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from wsapi.blob import (
    INLINE_READ_LIMIT,
    SPOOL_THRESHOLD,
    STREAM_CHUNK_SIZE,
    Blob,
    BlobBuilder,
    _SpoolFile,
)

T = TypeVar("T")

DATA = bytes(range(256)) * 3
"""768 bytes with no two equal neighbours, so an off-by-one in slicing shows."""


def spool_file(blob: Blob) -> _SpoolFile:
    """The one temporary file behind ``blob``."""
    files = {id(s.source): s.source for s in blob._segments if isinstance(s.source, _SpoolFile)}
    assert len(files) == 1
    (spool,) = files.values()
    return spool


def open_files_under(directory: Path) -> list[str] | None:
    """The paths of this process's open files inside ``directory`` (None without /proc)."""
    fd_dir = "/proc/self/fd"
    if not os.path.isdir(fd_dir):
        return None
    paths = []
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue  # the descriptor listdir itself used
        if target.startswith(str(directory)):
            paths.append(target)
    return paths


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary files go to a directory of the test's own, to see them open and closed."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def multi_segment(data: bytes) -> Blob:
    """A Blob of ``data`` made of several segments (memory and nested Blobs)."""
    third = len(data) // 3
    return Blob([Blob([data[:third]]), data[third : 2 * third], Blob([data[2 * third :]])])


# Construction


def test_constants() -> None:
    """The spooling threshold is 1 MiB and stream chunks are 64 KiB."""
    assert SPOOL_THRESHOLD == 1024 * 1024
    assert STREAM_CHUNK_SIZE == 64 * 1024
    assert INLINE_READ_LIMIT == 64 * 1024


async def test_empty_blob() -> None:
    """Blob() is empty with the empty type."""
    blob = Blob()
    assert blob.size == 0
    assert blob.type == ""
    assert await blob.arrayBuffer() == b""
    assert await blob.text() == ""
    assert [chunk async for chunk in blob.stream()] == []


def test_parts_none_is_absent() -> None:
    """parts=None is the absent argument, like undefined."""
    assert Blob(None).size == 0


def test_str_part_is_utf8() -> None:
    """A str part is encoded as UTF-8."""
    blob = Blob(["h\xe9\u20ac\U0001f600"])
    assert blob._read_all() == "h\xe9\u20ac\U0001f600".encode()
    assert blob.size == 1 + 2 + 3 + 4


def test_str_part_lone_surrogates_become_replacement() -> None:
    """Lone surrogates in a str part become U+FFFD (USVString conversion)."""
    blob = Blob(["a\ud800b\udfffc"])
    assert blob._read_all() == "a\ufffdb\ufffdc".encode()


def test_str_part_surrogate_pair_is_one_character() -> None:
    """A high then a low surrogate make the character the UTF-16 pair encodes."""
    assert Blob(["\ud83d\ude00"])._read_all() == "\U0001f600".encode()


def test_bytes_part() -> None:
    """A bytes part is taken as is."""
    assert Blob([DATA])._read_all() == DATA


def test_bytearray_part_is_copied() -> None:
    """A bytearray part is copied: changing it later does not change the Blob."""
    source = bytearray(b"abc")
    blob = Blob([source])
    source[0] = ord("X")
    source.extend(b"more")
    assert blob._read_all() == b"abc"
    assert blob.size == 3


def test_memoryview_part_takes_only_the_window() -> None:
    """A memoryview part gives only the view's bytes, not the whole buffer."""
    buffer = bytearray(b"0123456789")
    blob = Blob([memoryview(buffer)[2:5]])
    assert blob._read_all() == b"234"
    assert blob.size == 3


def test_memoryview_part_is_copied() -> None:
    """A memoryview part is copied at construction: mutating its source has no effect."""
    buffer = bytearray(b"0123456789")
    view = memoryview(buffer)[2:5]
    blob = Blob([view])
    view[0] = ord("X")
    buffer[3] = ord("Y")
    assert blob._read_all() == b"234"


def test_memoryview_part_of_wider_items() -> None:
    """A memoryview of 4-byte items contributes nbytes bytes."""
    numbers = array.array("i", [1, 2, 3])
    blob = Blob([memoryview(numbers)])
    assert blob.size == 3 * numbers.itemsize
    assert blob._read_all() == numbers.tobytes()


def test_memoryview_part_non_contiguous() -> None:
    """A strided memoryview contributes the bytes it shows, in order."""
    blob = Blob([memoryview(b"abcdef")[::2]])
    assert blob._read_all() == b"ace"


def test_parts_concatenate_in_order() -> None:
    """Parts of every type are concatenated in order."""
    blob = Blob(["a", b"b", bytearray(b"c"), memoryview(b"d"), Blob(["e"]), ""])
    assert blob._read_all() == b"abcde"
    assert blob.size == 5


def test_parts_from_any_iterable() -> None:
    """parts may be any iterable, a generator included."""
    blob = Blob(part for part in ("x", b"y"))
    assert blob._read_all() == b"xy"


def test_nested_blobs() -> None:
    """A Blob part contributes its bytes, at any depth."""
    inner = Blob(["b", Blob([b"c"])])
    outer = Blob([b"a", inner, "d", Blob([inner, inner])])
    assert outer._read_all() == b"abcdbcbc"


def test_nested_blob_shares_data() -> None:
    """A Blob built from a Blob shares its data rather than copying it."""
    inner = Blob([DATA])
    outer = Blob([inner, inner])
    sources = {id(segment.source) for segment in outer._segments}
    assert sources == {id(inner._segments[0].source)}


def test_nested_blob_type_not_inherited() -> None:
    """The type of a Blob part does not carry over."""
    assert Blob([Blob(["x"], type="text/plain")]).type == ""


@pytest.mark.parametrize("parts", ["text", b"bytes", bytearray(b"ba"), memoryview(b"mv")])
def test_bare_part_as_parts_is_type_error(parts: Any) -> None:
    """A single str or bytes-like object as parts is a TypeError (the IDL takes a sequence)."""
    with pytest.raises(TypeError, match="iterable"):
        Blob(parts)


def test_bare_blob_as_parts_is_type_error() -> None:
    """A single Blob as parts is a TypeError."""
    with pytest.raises(TypeError):
        Blob(Blob(["x"]))  # type: ignore[arg-type]


def test_non_iterable_parts_is_type_error() -> None:
    """A non-iterable parts is a TypeError."""
    with pytest.raises(TypeError, match="iterable"):
        Blob(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("part", [1, 1.5, None, True, ["nested"], {"a": 1}, object()])
def test_bad_part_is_type_error(part: Any) -> None:
    """A part that is not str, bytes-like or Blob is a TypeError."""
    with pytest.raises(TypeError, match="Blob part"):
        Blob(["ok", part])


# Type and options


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("", ""),
        ("text/plain", "text/plain"),
        ("Text/HTML; Charset=UTF-8", "text/html; charset=utf-8"),
        (" ~!", " ~!"),
        ("t\xe9xt/plain", ""),
        ("text/\u0130", ""),
        ("text/plain\x00", ""),
        ("text\t/plain", ""),
        ("text/plain\x7f", ""),
        ("a\ud800", ""),
    ],
)
def test_type_normalization(given: str, expected: str) -> None:
    """The type is ASCII-lowercased, or "" if a character is outside U+0020-U+007E."""
    assert Blob(type=given).type == expected
    assert Blob([], {"type": given}).type == expected


def test_type_keyword_and_options_agree() -> None:
    """The keyword type and options["type"] are the same setting."""
    assert Blob(["x"], {"type": "A/B"}).type == Blob(["x"], type="A/B").type == "a/b"


def test_type_given_twice_is_type_error() -> None:
    """Giving the type both in options and as a keyword is a TypeError."""
    with pytest.raises(TypeError, match="both"):
        Blob([], {"type": "a/b"}, type="c/d")


def test_type_not_str_is_type_error() -> None:
    """A type that is not a str is a TypeError."""
    with pytest.raises(TypeError, match="type"):
        Blob([], {"type": 5})
    with pytest.raises(TypeError, match="type"):
        Blob([], type=b"text/plain")  # type: ignore[arg-type]


def test_options_not_mapping_is_type_error() -> None:
    """options must be a mapping."""
    with pytest.raises(TypeError, match="mapping"):
        Blob([], "text/plain")  # type: ignore[arg-type]


def test_unknown_options_ignored() -> None:
    """Unknown dictionary members are ignored, as WebIDL dictionaries do."""
    assert Blob(["x"], {"lastModified": 3}).size == 1


def test_endings_native_converts_str_parts() -> None:
    """endings "native" turns CRLF, CR and LF in str parts into os.linesep."""
    blob = Blob(["a\r\nb\rc\nd", b"\r\n"], {"endings": "native"})
    sep = os.linesep.encode()
    assert blob._read_all() == b"a" + sep + b"b" + sep + b"c" + sep + b"d\r\n"


def test_endings_transparent_keeps_str_parts() -> None:
    """endings "transparent" (the default) keeps line endings as they are."""
    assert Blob(["a\r\nb\rc\n"], {"endings": "transparent"})._read_all() == b"a\r\nb\rc\n"
    assert Blob(["a\r\nb\rc\n"])._read_all() == b"a\r\nb\rc\n"


def test_endings_invalid_is_type_error() -> None:
    """An endings value outside the enum is a TypeError."""
    with pytest.raises(TypeError, match="endings"):
        Blob(["x"], {"endings": "unix"})


# Object behaviour


def test_attributes_read_only() -> None:
    """size and type cannot be assigned, and no attribute can be added."""
    blob = Blob(["x"])
    with pytest.raises(AttributeError):
        blob.size = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        blob.type = "a/b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        blob.extra = 1  # type: ignore[attr-defined]


def test_repr_shows_size_and_type() -> None:
    """repr() shows the size and the type."""
    assert repr(Blob(["abc"], type="text/plain")) == "<Blob size=3 type='text/plain'>"


def test_equality_is_identity() -> None:
    """Two Blobs with the same bytes are different objects, as on the web; Blobs hash."""
    first, second = Blob(["x"]), Blob(["x"])
    assert first != second
    assert first == first  # noqa: PLR0124 - identity is the point
    assert len({first, second}) == 2


def test_read_methods_are_coroutines() -> None:
    """arrayBuffer(), bytes() and text() are coroutine functions."""
    for method in (Blob.arrayBuffer, Blob.bytes, Blob.text):
        assert inspect.iscoroutinefunction(method)


# slice()


def test_slice_basic() -> None:
    """slice(start, end) gives the bytes from start to end, exclusive."""
    part = Blob([b"0123456789"]).slice(2, 5)
    assert part._read_all() == b"234"
    assert part.size == 3


def test_slice_defaults_whole_blob_empty_type() -> None:
    """slice() covers everything and has the empty type, not the original's."""
    blob = Blob([DATA], type="application/x-test")
    whole = blob.slice()
    assert whole is not blob
    assert whole._read_all() == DATA
    assert whole.type == ""


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (-3, None, b"789"),
        (0, -3, b"0123456"),
        (-5, -2, b"567"),
        (-100, 3, b"012"),
        (0, -100, b""),
        (5, 2, b""),
        (-2, -5, b""),
        (8, 100, b"89"),
        (100, 200, b""),
        (10, None, b""),
        (None, 4, b"0123"),
        (2**70, None, b""),
        (-(2**70), None, b"0123456789"),
    ],
)
def test_slice_rules(start: int | None, end: int | None, expected: bytes) -> None:
    """Negative indices count from the end, indices are clamped, end before start is empty."""
    assert Blob([b"0123456789"]).slice(start, end)._read_all() == expected


@pytest.mark.parametrize("make", [lambda d: Blob([d]), multi_segment], ids=["one", "several"])
def test_slice_matches_python_slicing(make: Callable[[bytes], Blob]) -> None:
    """For every start and end, slice() agrees with Python's slicing (the same rules)."""
    data = DATA[:30]
    blob = make(data)
    for start in range(-35, 36):
        for end in range(-35, 36):
            piece = blob.slice(start, end)
            assert piece._read_all() == data[start:end], (start, end)
            assert piece.size == len(data[start:end])


def test_slice_float_arguments_clamp() -> None:
    """Float indices are rounded half to even; NaN is 0; infinities clamp ([Clamp] long long)."""
    blob = Blob([b"0123456789"])
    assert blob.slice(0.5, 3.5)._read_all() == b"0123"
    assert blob.slice(2.5, 3.5)._read_all() == b"23"
    assert blob.slice(float("nan"), 3)._read_all() == b"012"
    assert blob.slice(float("-inf"), float("inf"))._read_all() == b"0123456789"
    assert blob.slice(-2.4)._read_all() == b"89"


@pytest.mark.parametrize("bad", ["1", b"1", True, [1]])
def test_slice_bad_argument_is_type_error(bad: Any) -> None:
    """A start or end that is not a number is a TypeError (bool included)."""
    blob = Blob([b"0123"])
    with pytest.raises(TypeError, match="start"):
        blob.slice(bad)
    with pytest.raises(TypeError, match="end"):
        blob.slice(0, bad)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [("", ""), ("Text/Plain", "text/plain"), ("t\xe9xt/plain", ""), ("a\nb", ""), (None, "")],
)
def test_slice_content_type(content_type: str | None, expected: str) -> None:
    """contentType follows the constructor's type rule."""
    assert Blob([b"x"], type="a/b").slice(0, 1, content_type).type == expected


def test_slice_content_type_not_str_is_type_error() -> None:
    """A contentType that is not a str is a TypeError."""
    with pytest.raises(TypeError, match="contentType"):
        Blob([b"x"]).slice(0, 1, 5)  # type: ignore[arg-type]


def test_slice_of_slice() -> None:
    """Slicing a slice counts from the slice's own start."""
    blob = Blob([b"0123456789"])
    assert blob.slice(2, 9).slice(1, -1)._read_all() == b"34567"
    assert blob.slice(2, 9).slice(-2)._read_all() == b"78"


def test_slice_shares_data() -> None:
    """A slice refers to the original's bytes instead of copying them."""
    blob = Blob([DATA])
    piece = blob.slice(10, 20)
    assert piece._segments[0].source is blob._segments[0].source


def test_slice_across_segments_keeps_only_needed_segments() -> None:
    """A slice inside one segment of a multi-segment Blob holds only that segment."""
    blob = Blob([b"aaaa", Blob([b"bbbb"]), Blob([b"cccc"])])
    piece = blob.slice(5, 7)
    assert piece._read_all() == b"bb"
    assert len(piece._segments) == 1
    assert blob.slice(3, 9)._read_all() == b"abbbbc"


# Reading


async def test_array_buffer_and_bytes_return_bytes() -> None:
    """arrayBuffer() and bytes() give the data as bytes."""
    blob = Blob(["ab", bytearray(b"cd")])
    result = await blob.arrayBuffer()
    assert type(result) is bytes
    assert result == b"abcd"
    assert await blob.bytes() == b"abcd"


async def test_text_decodes_utf8() -> None:
    """text() decodes UTF-8."""
    assert await Blob(["h\xe9llo \u20ac"]).text() == "h\xe9llo \u20ac"


async def test_text_replaces_malformed_bytes() -> None:
    """text() turns malformed UTF-8 into U+FFFD instead of raising."""
    blob = Blob([b"a\xffb\xed\xa0\x80c\xf0\x9f\x98"])
    assert await blob.text() == "a\ufffdb\ufffd\ufffd\ufffdc\ufffd"


async def test_text_drops_leading_bom_only() -> None:
    """text() drops one leading UTF-8 BOM (the Encoding standard's UTF-8 decode)."""
    assert await Blob([b"\xef\xbb\xbfhi\xef\xbb\xbf"]).text() == "hi\ufeff"
    assert await Blob([b"\xef\xbb\xbf\xef\xbb\xbf"]).text() == "\ufeff"


async def test_text_of_split_character() -> None:
    """A character split across parts decodes whole."""
    encoded = "\U0001f600".encode()
    assert await Blob([encoded[:1], Blob([encoded[1:3]]), encoded[3:]]).text() == "\U0001f600"


async def test_stream_small_blob_one_chunk() -> None:
    """A Blob smaller than a chunk streams as one chunk."""
    assert [chunk async for chunk in Blob([b"ab", "cd"]).stream()] == [b"abcd"]


async def test_stream_chunks_cross_segments() -> None:
    """Chunks have the named size whatever the segments, the last one shorter."""
    data = os.urandom(3 * STREAM_CHUNK_SIZE + 100)
    blob = Blob(
        [data[:10], Blob([data[10 : STREAM_CHUNK_SIZE + 7]]), data[STREAM_CHUNK_SIZE + 7 :]]
    )
    chunks = [chunk async for chunk in blob.stream()]
    assert [len(chunk) for chunk in chunks] == [STREAM_CHUNK_SIZE] * 3 + [100]
    assert b"".join(chunks) == data


async def test_stream_abandoned_leaves_nothing_behind() -> None:
    """A stream left after one chunk needs no closing and leaves no task."""
    stream = Blob([bytes(3 * STREAM_CHUNK_SIZE)]).stream()
    assert len(await stream.__anext__()) == STREAM_CHUNK_SIZE
    del stream


async def test_stream_ends_with_stop_async_iteration() -> None:
    """An exhausted stream keeps raising StopAsyncIteration."""
    stream = Blob([b"x"]).stream()
    assert await stream.__anext__() == b"x"
    for _ in range(2):
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()


async def test_streams_are_independent() -> None:
    """Each stream() call starts at the beginning."""
    blob = Blob([b"abc"])
    assert [c async for c in blob.stream()] == [c async for c in blob.stream()] == [b"abc"]


def test_read_all_returns_bytes() -> None:
    """_read_all() gives all the data, synchronously."""
    assert multi_segment(DATA)._read_all() == DATA


# Library-internal constructors


def test_from_bytes_does_not_copy_bytes() -> None:
    """Blob._from_bytes keeps a bytes object as is."""
    data = bytes(DATA)
    blob = Blob._from_bytes(data, type="Application/Octet-Stream")
    assert blob._read_all() is data
    assert blob.type == "application/octet-stream"
    assert not blob._file_backed


def test_from_bytes_copies_mutable_data() -> None:
    """Blob._from_bytes copies a bytearray or a memoryview."""
    source = bytearray(b"abc")
    blob = Blob._from_bytes(source)
    view_blob = Blob._from_bytes(memoryview(source)[1:])
    source[:] = b"XYZ"
    assert blob._read_all() == b"abc"
    assert view_blob._read_all() == b"bc"


def test_spooled_below_threshold_stays_in_memory() -> None:
    """Data of at most the threshold stays in memory."""
    assert not Blob._spooled(b"x" * 100, threshold=100)._file_backed
    assert not Blob._spooled([b"x" * 60, b"y" * 40], threshold=100)._file_backed


def test_spooled_above_threshold_goes_to_file(spool_dir: Path) -> None:
    """Data past the threshold lives in a temporary file."""
    blob = Blob._spooled(b"x" * 101, threshold=100, type="A/B")
    assert blob._file_backed
    assert blob.type == "a/b"
    assert blob.size == 101
    open_files = open_files_under(spool_dir)
    assert open_files is None or len(open_files) == 1


async def test_spooled_round_trip_exact(spool_dir: Path) -> None:
    """A spooled Blob gives back exactly its bytes by every reading method."""
    data = os.urandom(200_000)
    chunks = [data[i : i + 7_000] for i in range(0, len(data), 7_000)]
    blob = Blob._spooled(chunks, threshold=50_000)
    assert blob._file_backed
    assert blob.size == len(data)
    assert await blob.arrayBuffer() == data
    assert await blob.bytes() == data
    assert blob._read_all() == data
    assert b"".join([chunk async for chunk in blob.stream()]) == data
    assert await Blob._spooled([b"caf", "\xe9".encode()], threshold=1).text() == "caf\xe9"


def test_builder_keeps_order_across_spill() -> None:
    """Fragments before and after the move to a file stay in order."""
    builder = BlobBuilder(threshold=10)
    builder.append(b"0123")
    builder.append(bytearray(b"4567"))
    assert not builder.spooled
    builder.append(memoryview(b"89ab"))
    assert builder.spooled
    builder.append(b"")
    builder.append(memoryview(array.array("B", b"cdef")))
    assert builder.size == 16
    blob = builder.build()
    assert blob._read_all() == b"0123456789abcdef"
    assert blob._file_backed


def test_builder_copies_mutable_fragments() -> None:
    """A fragment appended as a bytearray is copied: the receive buffer may be reused."""
    builder = BlobBuilder(threshold=100)
    fragment = bytearray(b"abc")
    builder.append(fragment)
    builder.append(memoryview(fragment)[1:])
    fragment[:] = b"XYZ"
    assert builder.build()._read_all() == b"abcbc"


def test_builder_empty_message() -> None:
    """A builder with nothing appended builds an empty Blob."""
    blob = BlobBuilder().build()
    assert blob.size == 0
    assert blob._read_all() == b""


def test_builder_cannot_be_reused() -> None:
    """A builder cannot take data or build again after build() or discard()."""
    builder = BlobBuilder()
    builder.build()
    with pytest.raises(RuntimeError, match="built"):
        builder.append(b"x")
    with pytest.raises(RuntimeError, match="built"):
        builder.build()
    discarded = BlobBuilder()
    discarded.discard()
    with pytest.raises(RuntimeError, match="discarded"):
        discarded.append(b"x")


def test_builder_discard_closes_file(spool_dir: Path) -> None:
    """discard() deletes the temporary file at once."""
    builder = BlobBuilder(threshold=1)
    builder.append(b"abc")
    spool = builder._file
    assert spool is not None
    builder.discard()
    assert not spool._finalizer.alive
    assert spool._file.closed
    assert open_files_under(spool_dir) in (None, [])


def test_builder_discard_after_build_keeps_blob() -> None:
    """discard() after build() leaves the built Blob readable."""
    builder = BlobBuilder(threshold=1)
    builder.append(b"abc")
    blob = builder.build()
    builder.discard()
    assert blob._read_all() == b"abc"


def test_abandoned_builder_file_closed_on_gc(spool_dir: Path) -> None:
    """A builder dropped mid-message has its temporary file closed when collected."""
    builder = BlobBuilder(threshold=1)
    builder.append(b"abc")
    assert builder._file is not None
    finalizer = builder._file._finalizer
    del builder
    gc.collect()
    assert not finalizer.alive
    assert open_files_under(spool_dir) in (None, [])


# Lifetime of the temporary file


def test_spooled_file_removed_after_gc(spool_dir: Path) -> None:
    """The temporary file is closed and gone once no Blob refers to it, with no warning."""
    blob = Blob._spooled(b"x" * 100, threshold=10)
    spool = spool_file(blob)
    finalizer, raw = spool._finalizer, spool._file
    del blob, spool
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not finalizer.alive
    assert raw.closed
    assert open_files_under(spool_dir) in (None, [])


def test_slice_keeps_spooled_file_alive(spool_dir: Path) -> None:
    """A slice of a spooled Blob keeps the file until the slice is gone too."""
    data = os.urandom(1000)
    blob = Blob._spooled(data, threshold=10)
    finalizer = spool_file(blob)._finalizer
    piece = blob.slice(100, -100, "text/plain")
    assert piece._file_backed
    del blob
    gc.collect()
    assert finalizer.alive
    assert piece._read_all() == data[100:-100]
    assert piece.type == "text/plain"
    del piece
    gc.collect()
    assert not finalizer.alive
    assert open_files_under(spool_dir) in (None, [])


def test_nested_blob_keeps_spooled_file_alive() -> None:
    """A Blob built from a spooled Blob keeps the file while it lives."""
    data = os.urandom(500)
    spooled = Blob._spooled(data, threshold=10)
    finalizer = spool_file(spooled)._finalizer
    outer = Blob([b"<", spooled, b">"])
    del spooled
    gc.collect()
    assert finalizer.alive
    assert outer._read_all() == b"<" + data + b">"
    del outer
    gc.collect()
    assert not finalizer.alive


async def test_stream_keeps_spooled_file_alive() -> None:
    """A stream keeps reading after its Blob is gone."""
    data = os.urandom(3 * STREAM_CHUNK_SIZE)
    blob = Blob._spooled(data, threshold=10)
    finalizer = spool_file(blob)._finalizer
    stream = blob.stream()
    del blob
    gc.collect()
    assert finalizer.alive
    assert b"".join([chunk async for chunk in stream]) == data
    del stream
    gc.collect()
    assert not finalizer.alive


def test_slice_matches_python_slicing_spooled() -> None:
    """slice() of a spooled Blob agrees with Python's slicing."""
    data = DATA[:40]
    blob = Blob([b"", Blob._spooled(data[:25], threshold=1), data[25:]])
    for start in range(-42, 43, 3):
        for end in range(-42, 43):
            assert blob.slice(start, end)._read_all() == data[start:end], (start, end)


# Large spooled Blobs


@pytest.fixture
def large() -> tuple[bytes, Blob]:
    """A 5 MiB (plus a bit) spooled Blob and its bytes."""
    data = os.urandom(5 * 1024 * 1024 + 123)
    chunks = [data[i : i + 100_000] for i in range(0, len(data), 100_000)]
    blob = Blob._spooled(chunks)
    assert blob._file_backed
    return data, blob


async def test_large_spooled_streams_in_named_chunks(large: tuple[bytes, Blob]) -> None:
    """A 5 MiB spooled Blob streams in STREAM_CHUNK_SIZE chunks, the last one shorter."""
    data, blob = large
    chunks = [chunk async for chunk in blob.stream()]
    assert all(len(chunk) == STREAM_CHUNK_SIZE for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= STREAM_CHUNK_SIZE
    assert len(chunks) == -(-len(data) // STREAM_CHUNK_SIZE)
    assert b"".join(chunks) == data


async def test_large_file_read_runs_in_thread(
    large: tuple[bytes, Blob], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large file-backed read runs in a worker thread; small and in-memory reads do not."""
    data, blob = large
    calls: list[int] = []
    real_to_thread = asyncio.to_thread

    async def counting_to_thread(function: Callable[..., T], *args: Any) -> T:
        calls.append(1)
        return await real_to_thread(function, *args)

    monkeypatch.setattr(asyncio, "to_thread", counting_to_thread)
    assert await blob.arrayBuffer() == data
    assert len(calls) == 1
    assert await blob.slice(0, INLINE_READ_LIMIT).arrayBuffer() == data[:INLINE_READ_LIMIT]
    assert await Blob([data]).arrayBuffer() == data
    assert len(calls) == 1


async def test_concurrent_reads_of_one_file(large: tuple[bytes, Blob]) -> None:
    """Reads of one spooled file from several threads at once each get their own bytes."""
    data, blob = large
    size = len(data) // 4
    pieces = [blob.slice(i * size, (i + 1) * size) for i in range(4)]
    results = await asyncio.gather(*(piece.arrayBuffer() for piece in pieces))
    assert list(results) == [data[i * size : (i + 1) * size] for i in range(4)]
