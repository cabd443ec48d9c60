"""Write the seed corpus (``fuzz/corpus/<target>/``): a few valid and a few broken inputs
per target, from which the fuzzer mutates. Run it again after changing a target's input
layout: ``python fuzz/seeds.py``."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"

OK_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: {ACCEPT}\r\n"
)


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def _frame(first: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes([first, n]) + payload
    if n < 65536:
        return bytes([first, 126]) + n.to_bytes(2, "big") + payload
    return bytes([first, 127]) + n.to_bytes(8, "big") + payload


SEEDS: dict[str, list[bytes]] = {
    "engine": [
        # options, number of cuts, cuts, frames
        bytes([0x20, 0]) + _frame(0x81, b"hello") + _frame(0x82, b"\x00\xff"),
        bytes([0x20, 2, 0, 3])
        + _frame(0x01, b"frag")
        + _frame(0x89, b"ping")
        + _frame(0x80, b"ment"),
        bytes([0xA0, 0]) + _frame(0x88, b"\x03\xe8bye"),
        bytes([0x60, 0]) + _frame(0x82, bytes(300)) + _frame(0x8A, b""),
        bytes([0x21, 1, 4]) + _frame(0xC1, _deflate(b"Hello" * 40)) + _frame(0x81, b"plain"),
        bytes([0x23, 0])
        + _frame(0x41, _deflate(b"part one ")[:5])
        + _frame(0x80, _deflate(b"part one ")[5:]),
        bytes([0x10, 0]) + _frame(0x82, bytes(2000)),
        bytes([0x20, 0]) + bytes([0x81, 0xFF]) + (1 << 63).to_bytes(8, "big"),
        bytes([0x20, 0])
        + _frame(0x81, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"),
        bytes([0x20, 0]) + bytes([0x81, 0x85, 1, 2, 3, 4]) + b"abcde",
        bytes([0x20, 0]) + _frame(0x00, b"") * 20,
    ],
    "handshake": [
        bytes([0, 0]) + OK_101 + b"\r\n",
        bytes([0, 3, 10, 20, 0]) + OK_101 + b"\r\n" + _frame(0x81, b"early"),
        bytes([2, 0]) + OK_101 + b"Sec-WebSocket-Protocol: chat\r\n\r\n",
        bytes([1, 0])
        + OK_101
        + b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n\r\n",
        bytes([4, 0]) + b"HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\nnot you",
        bytes([4, 1, 30]) + b"HTTP/1.1 302 Found\r\nLocation: wss://elsewhere.test/\r\n\r\n",
        bytes([4, 0])
        + b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nerror\r\n0\r\n\r\n",
        bytes([4, 0]) + b"HTTP/1.0 101 Switching\r\nUpgrade: websocket\r\n\r\n",
        bytes([0, 0])
        + b"HTTP/1.1 101 \r\nupgrade:  WebSocket \r\nconnection: keep-alive, upgrade\r\n"
        + b"sec-websocket-accept:{ACCEPT}\r\n\r\n",
        bytes([4, 0]) + b"HTTP/1.1 100 Continue\r\n\r\n",
        # What found the empty read taken as the end of stream (N=23 cuts, no response).
        b"Swit,\x00\x00\x00\x00\x00\x00\x00 tgo",
    ],
    "deflate": [
        bytes([7, 0]) + b"permessage-deflate\n" + _deflate(b"Hello, world"),
        bytes([4, 2, 3, 9])
        + b"permessage-deflate; server_max_window_bits=9\n"
        + _deflate(b"ab" * 300),
        bytes([2, 0])
        + b"permessage-deflate; client_no_context_takeover\n"
        + _deflate(bytes(5000)),
        bytes([15, 0])
        + b'permessage-deflate; client_max_window_bits="10"\n'
        + _deflate("é".encode() * 9),
        bytes([7, 0]) + b"permessage-deflate\n\xf2\x48\xcd\xc9\xc9\x07\x00\x00",
        bytes([7, 0]) + b"permessage-deflate; x=1, foo\n\xff\xff",
    ],
    "url": [
        b"\x00ws://example.test/chat?room=1",
        b"\x00wss://[::1]:8443/",
        b"\x01https://xn--nxasmq6b.test",
        b"\x03/relative/path?x",
        b"\x00ws://user:pass@example.test:80/",
        b"\x01ws://ex ample.test/a b",
        b"\x00ws://example.test/#fragment",
        b"\x00ws://ex%0d%0aample.test/\r\nX: y",
    ],
    "proxy": [
        bytes([0, 0]) + b"HTTP/1.1 200 Connection established\r\n\r\n",
        bytes([1, 2, 5, 5])
        + b"HTTP/1.1 407 Proxy Authentication Required\r\n"
        + b'Proxy-Authenticate: Basic realm="x"\r\nContent-Length: 0\r\n\r\n',
        bytes([0, 0]) + b"HTTP/1.1 200 OK\r\n\r\n\x81\x02hi",
        bytes([2, 0]) + b"HTTP/1.0 502 Bad Gateway\r\n\r\n",
        bytes([0, 0]) + b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        bytes([2, 0]) + b"SSH-2.0-OpenSSH_9.6\r\n",
    ],
}


def main() -> None:
    for target, seeds in SEEDS.items():
        directory = CORPUS / target
        directory.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


if __name__ == "__main__":
    main()
