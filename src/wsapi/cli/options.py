"""The command line's options: the parser, the types of their values, and the ``UserAgent``
they describe. Values are checked here, so a bad one is a usage error (exit status 2) before
anything connects."""

from __future__ import annotations

import argparse
import base64
import math
import ssl
from typing import Any

from wsapi import UserAgent

__all__ = ["DEFAULT_LINGER", "build_agent", "build_parser"]

DEFAULT_LINGER = 1.0
"""Seconds of silence after the input ends before pipe mode closes: a round trip to a
server on another continent and back, with room for the server to think. ``--linger`` and
``-w`` change it; against the embedded echo server the wait ends as soon as every echo is
in."""

EXAMPLES = """\
examples:
  wsapi                                  interactive session with the embedded echo server
  wsapi wss://echo.example/chat -p chat  interactive session, subprotocol "chat"
  printf 'hello\\n' | wsapi               a line in, its echo out (embedded echo server)
  wsapi wss://api.example/ws -x '{"op":"subscribe"}' -w 10 --jsonl | jq .
                                         send one message, print events as JSON for 10 s
  wsapi ws://localhost:8080/ < lines.txt > replies.txt
                                         one message per line, the replies as lines
  wsapi --serve 8765                     run only the echo server, on 127.0.0.1:8765

interactive commands: /ping [text], /close [code [reason]], /binary HEX|base64:DATA|@FILE,
  /state, /help, /quit; a line starting with // sends the rest, starting with /.

exit status:
  0    the connection closed cleanly (1000, 1001, no code, or the code you chose)
  1    the connection failed, or closed uncleanly (error event, close code 1006)
  2    usage error: bad option or value, or a URL the WebSocket constructor refuses
  3    the server closed cleanly with another code (e.g. 1011, 4000)
  4    the command line's dependencies are missing: pip install 'wsapi[cli]'
  130  interrupted by SIGINT, the connection closed first (143: SIGTERM); interactively,
       Ctrl-C is a key that closes and leaves like /quit (status 0 to 3)

environment: NO_COLOR disables colours; WSAPI_HISTORY is the history file ("" for none);
  ws_proxy, wss_proxy, https_proxy, http_proxy, all_proxy, no_proxy choose a proxy;
  WSAPI_NO_UVLOOP=1 keeps the standard event loop when uvloop is installed.
"""


# Argument types.


def _seconds(text: str) -> float:
    """Seconds: a number; 0, "none" or "inf" mean no limit (returned as 0)."""
    if text.lower() in ("none", "off", "inf", "infinity"):
        return 0.0
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return 0.0 if math.isinf(value) else value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError("NaN is not a number of seconds")
    return value


def _wait(text: str) -> float:
    """``-w``: seconds, ``inf`` for "until the server closes"."""
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _positive_seconds(text: str) -> float:
    value = _float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _size(text: str) -> int:
    """Bytes, with an optional K, M or G suffix (powers of 1024); 0 or "none": no limit."""
    if text.lower() in ("none", "off", "inf"):
        return 0
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    digits = text.lower().removesuffix("b").removesuffix("i")
    factor = units.get(digits[-1:], 1)
    if factor != 1:
        digits = digits[:-1]
    try:
        value = int(float(digits) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 65536 or 64M") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("the count must be at least 1")
    return value


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name or any(c.isspace() for c in name):
        raise argparse.ArgumentTypeError(f"{text!r} is not 'Name: value'")
    return name, value.strip()


def _listen(text: str) -> tuple[str, int]:
    """``--serve [[HOST:]PORT]``."""
    host, _, port_text = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not [HOST:]PORT") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not in 0-65535")
    return host, port


def build_parser(version: str) -> argparse.ArgumentParser:
    """The parser of the command's arguments; ``--version`` prints ``version``."""
    parser = argparse.ArgumentParser(
        prog="wsapi",
        usage="%(prog)s [options] [URL]",
        description=(
            "A WebSocket client that shows what a browser script would see: open, message,\n"
            "error (with the reason a browser keeps to itself) and close events. With no URL,\n"
            "it connects to an embedded echo server on 127.0.0.1."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "url", nargs="?", metavar="URL", help="ws:// or wss:// URL (none: embedded echo server)"
    )
    parser.add_argument("-V", "--version", action="version", version=version)

    handshake = parser.add_argument_group("connection")
    handshake.add_argument(
        "-p",
        "--protocol",
        action="append",
        default=[],
        metavar="NAME",
        help="request a subprotocol (repeat, or separate with commas)",
    )
    handshake.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        type=_header,
        metavar="'NAME: VALUE'",
        help="add a handshake request header (repeat for more)",
    )
    handshake.add_argument(
        "--auth", metavar="USER:PASSWORD", help="HTTP Basic authentication header"
    )
    handshake.add_argument(
        "--origin", metavar="ORIGIN", help="the page's origin, sent as Origin (default: none)"
    )
    handshake.add_argument(
        "--user-agent", metavar="TEXT", help='the User-Agent header ("" sends none)'
    )
    handshake.add_argument(
        "--standard",
        choices=("cr-2011", "whatwg"),
        default="cr-2011",
        help="the API's rules: the W3C CR of 2011 (default) or the WHATWG living standard",
    )
    handshake.add_argument(
        "--compression",
        choices=("deflate", "none"),
        help="offer permessage-deflate (default: none for cr-2011, deflate for whatwg)",
    )
    handshake.add_argument(
        "--proxy",
        metavar="URL",
        help="http://, https://, socks5://, socks5h:// or socks4:// proxy",
    )
    handshake.add_argument(
        "--no-proxy",
        action="store_true",
        help="connect directly, whatever the *_proxy environment variables say",
    )
    handshake.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify the server's certificate"
    )
    handshake.add_argument("--cacert", metavar="FILE", help="trust the CA certificates in FILE")
    handshake.add_argument("--cert", metavar="FILE", help="client certificate (PEM)")
    handshake.add_argument(
        "--key", metavar="FILE", help="the client certificate's key (default: in --cert)"
    )

    limits = parser.add_argument_group("limits and timers")
    limits.add_argument(
        "--max-size",
        "--max-message-size",
        type=_size,
        metavar="BYTES",
        help="largest message accepted, e.g. 1M (default 64M; 0: none); a larger one fails "
        "the connection with 1009",
    )
    limits.add_argument(
        "--open-timeout",
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="time to open the connection (default 30; 0: none)",
    )
    limits.add_argument(
        "--close-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="time for the closing handshake (default 10; 0: none)",
    )
    limits.add_argument(
        "--ping-interval",
        type=_seconds,
        metavar="SECONDS",
        help="send a keepalive Ping this often (default: never)",
    )
    limits.add_argument(
        "--ping-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="fail the connection when a keepalive Pong is this late",
    )

    sending = parser.add_argument_group("messages")
    sending.add_argument(
        "-x",
        "--execute",
        action="append",
        default=[],
        metavar="MESSAGE",
        help="send MESSAGE once open (repeat for more), then close instead of reading input",
    )
    sending.add_argument(
        "-b", "--binary", action="store_true", help="send lines as binary messages, not text"
    )
    sending.add_argument(
        "--binary-type",
        choices=("blob", "arraybuffer"),
        default="blob",
        help="ws.binaryType: what binary messages arrive as (default blob, as in a browser)",
    )
    sending.add_argument(
        "-1", "--once", action="store_true", help="close after the first message received"
    )
    sending.add_argument(
        "-n", "--count", type=_count, metavar="N", help="close after N messages received"
    )
    sending.add_argument(
        "--linger",
        type=_positive_seconds,
        default=DEFAULT_LINGER,
        metavar="SECONDS",
        help="after the input ends, close once no message has arrived for this long "
        f"(default {DEFAULT_LINGER:g})",
    )
    sending.add_argument(
        "-w",
        "--wait",
        type=_wait,
        metavar="SECONDS",
        help="after the input ends, wait this long instead (inf: until the server closes)",
    )

    shown = parser.add_argument_group("output")
    shown.add_argument(
        "--jsonl",
        "--json",
        action="store_true",
        help="one JSON object per event on stdout, for scripts",
    )
    shown.add_argument(
        "-q", "--quiet", action="store_true", help="show messages and failures only"
    )
    shown.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colours: auto (default) on a terminal when NO_COLOR is unset",
    )
    shown.add_argument(
        "--no-color", dest="color", action="store_const", const="never", help="no colours"
    )
    shown.add_argument(
        "--binary-format",
        choices=("hex", "base64", "raw"),
        default="hex",
        help="how pipe mode writes a binary message on stdout (default hex, one per line)",
    )

    server = parser.add_argument_group("echo server")
    server.add_argument(
        "--serve",
        nargs="?",
        const="127.0.0.1:0",
        type=_listen,
        metavar="[HOST:]PORT",
        help="only run the echo server (default 127.0.0.1, a free port) until Ctrl-C",
    )
    return parser


def build_agent(args: argparse.Namespace, *, embedded: bool) -> UserAgent:
    """The ``UserAgent`` the options describe (``ValueError`` for a bad value)."""
    headers: list[tuple[str, str]] = list(args.header)
    if args.auth is not None:
        token = base64.b64encode(args.auth.encode("utf-8")).decode("ascii")
        headers.append(("Authorization", f"Basic {token}"))
    ssl_context = None
    if args.insecure or args.cacert or args.cert:
        ssl_context = ssl.create_default_context(cafile=args.cacert)
        if args.cert:
            ssl_context.load_cert_chain(args.cert, args.key)
        if args.insecure:
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
    settings: dict[str, Any] = {
        "standard": args.standard,
        "origin": args.origin,
        "ssl_context": ssl_context,
        "headers": headers,
    }
    if args.no_proxy or (embedded and args.proxy is None):
        # The embedded server is on this machine: no proxy from the environment applies.
        settings["proxy"] = None
    elif args.proxy is not None:
        settings["proxy"] = args.proxy
    if args.compression is not None:
        settings["compression"] = None if args.compression == "none" else "deflate"
    if args.user_agent is not None:
        settings["user_agent"] = args.user_agent or None
    if args.max_size is not None:
        settings["max_message_size"] = args.max_size or None
    for name in ("open_timeout", "close_timeout", "ping_interval", "ping_timeout"):
        value = getattr(args, name)
        if value is not None:
            settings[name] = value or None
    return UserAgent(**settings)
