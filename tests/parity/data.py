"""Payloads as data, and received data described the same way by runner.js, wsapi_runner.py
and the peers."""

from __future__ import annotations

import hashlib
from typing import Any

from wsapi import Blob

Data = dict[str, Any]
"""A payload spec, JSON-ready: ``{"kind": "text" | "binary" | "view" | "blob", ...}``."""

INLINE_LIMIT = 64
"""Data longer than this many bytes is logged as its length and SHA-256 (as in runner.js)."""


def text(value: str) -> Data:
    """A string (lone surrogates allowed: JSON carries them to both sides)."""
    return {"kind": "text", "value": value}


def long_text(repeat: str, times: int) -> Data:
    """``repeat`` repeated ``times`` times."""
    return {"kind": "text", "repeat": repeat, "times": times}


def binary(data: bytes = b"") -> Data:
    """An ArrayBuffer in JavaScript, ``bytes`` in Python."""
    return {"kind": "binary", "hex": data.hex()}


def binary_pattern(length: int) -> Data:
    """``length`` bytes of ``pattern()``, as an ArrayBuffer / ``bytes``."""
    return {"kind": "binary", "length": length}


def view(data: bytes, offset: int, length: int) -> Data:
    """A ``Uint8Array`` on part of a buffer; a ``memoryview`` slice in Python."""
    return {"kind": "view", "hex": data.hex(), "offset": offset, "length": length}


def blob(data: bytes = b"", *, length: int | None = None) -> Data:
    """A Blob of ``data`` (or of ``length`` bytes of ``pattern()``)."""
    if length is not None:
        return {"kind": "blob", "length": length}
    return {"kind": "blob", "hex": data.hex()}


def pattern(length: int) -> bytes:
    """Bytes ``(i * 31 + 7) & 255``: what binary_pattern() and blob(length=) send."""
    block = bytes((i * 31 + 7) & 255 for i in range(256))
    return (block * (length // 256 + 1))[:length]


def payload_bytes(spec: Data) -> bytes:
    """The bytes of a binary, view or blob spec."""
    if "length" in spec and spec["kind"] != "view":
        return pattern(spec["length"])
    data = bytes.fromhex(spec["hex"])
    if spec["kind"] == "view":
        return data[spec["offset"] : spec["offset"] + spec["length"]]
    return data


def message_data(spec: Data) -> str | bytes:
    """A text or binary spec as a message for a server to send."""
    if spec["kind"] == "text":
        return str(spec["value"]) if "value" in spec else str(spec["repeat"]) * int(spec["times"])
    return payload_bytes(spec)


def make_data(spec: Data) -> str | bytes | memoryview | Blob:
    """What a Python program passes to ``send()`` for this spec."""
    kind = spec["kind"]
    if kind == "text":
        if "repeat" in spec:
            return str(spec["repeat"]) * int(spec["times"])
        return str(spec["value"])
    if kind == "binary":
        return payload_bytes(spec)
    if kind == "view":
        whole = bytes.fromhex(spec["hex"])
        return memoryview(whole)[spec["offset"] : spec["offset"] + spec["length"]]
    if kind == "blob":
        return Blob([payload_bytes(spec)])
    raise ValueError(f"unknown data kind {kind!r}")


def digest(data: bytes) -> str:
    """The first 16 hex digits of SHA-256 (crypto.subtle.digest in the page)."""
    return hashlib.sha256(data).hexdigest()[:16]


def describe_text(value: str) -> dict[str, Any]:
    """``{"kind": "text", "value"}``, or its UTF-8 length and hash when long."""
    encoded = value.encode("utf-8", "surrogatepass")
    if len(encoded) <= INLINE_LIMIT:
        return {"kind": "text", "value": value}
    return {"kind": "text", "length": len(encoded), "sha256": digest(encoded)}


def describe_bytes(into: dict[str, Any], data: bytes) -> dict[str, Any]:
    """Adds ``hex``, or ``length`` and ``sha256`` when long, to ``into``."""
    if len(data) <= INLINE_LIMIT:
        into["hex"] = data.hex()
    else:
        into.update(length=len(data), sha256=digest(data))
    return into
