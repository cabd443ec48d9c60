"""Tests of UserAgent: settings, proxies from the environment, cookies, connection throttle."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Callable
from http.cookiejar import CookieJar
from typing import Any

import pytest

from support import TIMEOUT
from wsapi import agent as agent_module
from wsapi.agent import BAD_PORTS, DEFAULT_MAX_BUFFERED_AMOUNT, UserAgent, default_agent

PROXY_VARIABLES = (
    "ws_proxy",
    "wss_proxy",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)

# The Fetch standard's "bad port" list, copied independently of the implementation.
FETCH_BAD_PORTS = {
    0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95,
    101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179,
    389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601,
    636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566,
    6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
}  # fmt: skip

CASES: list[Callable[[str], str]] = [str.lower, str.upper]


@pytest.fixture(params=["environ-dict", "environ-get"])
def clean_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> pytest.MonkeyPatch:
    """Remove every proxy variable, in both cases, from the environment; the agent reads it
    by its POSIX shortcut (os.environ's own dict), then as on other systems (its get())."""
    if request.param == "environ-get":
        monkeypatch.setattr(agent_module, "_POSIX", False)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


async def settle() -> None:
    """Let every ready callback run a few times over."""
    for _ in range(5):
        await asyncio.sleep(0)


# Settings: standard, origin, base_url.


def test_standard_default_and_values() -> None:
    """standard defaults to "cr-2011" and accepts "whatwg"."""
    assert UserAgent().standard == "cr-2011"
    assert UserAgent(standard="cr-2011").standard == "cr-2011"
    assert UserAgent(standard="whatwg").standard == "whatwg"


@pytest.mark.parametrize("standard", ["html5", "WHATWG", "", "rfc6455"])
def test_standard_refuses_others(standard: str) -> None:
    """A standard other than the two is a ValueError."""
    bad: Any = standard
    with pytest.raises(ValueError, match="standard"):
        UserAgent(standard=bad)


def test_origin_default_none() -> None:
    """Without an origin, the agent has none (no Origin header)."""
    assert UserAgent().origin is None
    assert UserAgent(origin=None).origin is None


@pytest.mark.parametrize(
    ("origin", "serialized"),
    [
        ("https://app.example", "https://app.example"),
        ("https://app.example/", "https://app.example"),
        ("HTTPS://APP.Example:443/path?q=1#frag", "https://app.example"),
        ("http://app.example:80/", "http://app.example"),
        ("http://app.example:8080/x", "http://app.example:8080"),
        ("https://user:pass@app.example/", "https://app.example"),
        ("blob:https://app.example/1234", "https://app.example"),
        ("http://[::1]:8000/", "http://[::1]:8000"),
    ],
)
def test_origin_serialized(origin: str, serialized: str) -> None:
    """origin is stored as the serialization of the URL's origin."""
    assert UserAgent(origin=origin).origin == serialized


@pytest.mark.parametrize(
    "origin", ["data:text/plain,x", "file:///etc/passwd", "about:blank", "javascript:1"]
)
def test_origin_refuses_opaque(origin: str) -> None:
    """A URL whose origin is opaque is a ValueError."""
    with pytest.raises(ValueError, match="opaque"):
        UserAgent(origin=origin)


@pytest.mark.parametrize("origin", ["app.example", "/path", "", "https://", "http://a b/"])
def test_origin_refuses_non_url(origin: str) -> None:
    """A string that is not an absolute URL is a ValueError."""
    with pytest.raises(ValueError, match="origin"):
        UserAgent(origin=origin)


def test_base_url_default_none() -> None:
    """base_url defaults to None."""
    assert UserAgent().base_url is None


@pytest.mark.parametrize(
    ("base_url", "href"),
    [
        ("https://app.example/dir/page", "https://app.example/dir/page"),
        ("https://app.example", "https://app.example/"),
        ("HTTP://App.Example:80/a/../b", "http://app.example/b"),
        ("wss://app.example/", "wss://app.example/"),
    ],
)
def test_base_url_parsed(base_url: str, href: str) -> None:
    """base_url is stored as the parsed URL's href, in either standard."""
    assert UserAgent(base_url=base_url).base_url == href
    assert UserAgent(standard="whatwg", base_url=base_url).base_url == href


@pytest.mark.parametrize("base_url", ["/relative", "relative/path", "", "http://"])
def test_base_url_refuses_non_absolute(base_url: str) -> None:
    """A base_url that is not an absolute URL is a ValueError."""
    with pytest.raises(ValueError, match="base_url"):
        UserAgent(base_url=base_url)


# Settings: cookie_jar, ssl_context, compression.


def test_cookie_jar_default_fresh_per_agent() -> None:
    """Each agent gets its own in-memory jar by default; a given jar is used as is."""
    first, second = UserAgent(), UserAgent()
    assert isinstance(first.cookie_jar, CookieJar)
    assert first.cookie_jar is not second.cookie_jar
    jar = CookieJar()
    assert UserAgent(cookie_jar=jar).cookie_jar is jar


def test_ssl_context_kept() -> None:
    """ssl_context defaults to None and a given context is kept."""
    assert UserAgent().ssl_context is None
    context = ssl.create_default_context()
    assert UserAgent(ssl_context=context).ssl_context is context


def test_compression_default_per_standard() -> None:
    """compression defaults to None in cr-2011 and "deflate" in whatwg."""
    assert UserAgent().compression is None
    assert UserAgent(standard="cr-2011").compression is None
    assert UserAgent(standard="whatwg").compression == "deflate"


@pytest.mark.parametrize("standard", ["cr-2011", "whatwg"])
def test_compression_explicit(standard: Any) -> None:
    """An explicit compression wins over the standard's default."""
    assert UserAgent(standard=standard, compression="deflate").compression == "deflate"
    assert UserAgent(standard=standard, compression=None).compression is None


@pytest.mark.parametrize("compression", ["gzip", "permessage-deflate", "", "DEFLATE", True])
def test_compression_refuses_others(compression: Any) -> None:
    """A compression other than None and "deflate" is a ValueError."""
    with pytest.raises(ValueError, match="compression"):
        UserAgent(compression=compression)


# Settings: proxy.


def test_proxy_default_env() -> None:
    """proxy defaults to "env" and accepts None."""
    assert UserAgent().proxy == "env"
    assert UserAgent(proxy=None).proxy is None


@pytest.mark.parametrize("scheme", ["http", "https", "socks5", "socks5h", "socks4"])
@pytest.mark.parametrize("userinfo", ["", "user:pass@", "user@"])
def test_proxy_schemes_accepted(scheme: str, userinfo: str) -> None:
    """Every allowed scheme is accepted, with or without credentials."""
    url = f"{scheme}://{userinfo}proxy.test:1080"
    assert UserAgent(proxy=url).proxy == url


@pytest.mark.parametrize(
    "proxy",
    [
        "ftp://proxy.test:21",
        "ws://proxy.test:80",
        "wss://proxy.test:443",
        "socks://proxy.test:1080",
        "socks4a://proxy.test:1080",
        "file:///tmp/proxy",
        "socks5://",
        "http://",
        "proxy.test:3128",
        "",
        "not a url",
    ],
)
def test_proxy_refused(proxy: str) -> None:
    """Other schemes, hostless URLs and non-URLs are a ValueError."""
    with pytest.raises(ValueError, match="proxy"):
        UserAgent(proxy=proxy)


# Settings: timeouts.

TIMEOUTS = ["open_timeout", "close_timeout", "ping_interval", "ping_timeout"]


def test_timeout_defaults() -> None:
    """open 30 s, close 10 s, no keepalive pings by default."""
    agent = UserAgent()
    assert agent.open_timeout == 30.0
    assert agent.close_timeout == 10.0
    assert agent.ping_interval is None
    assert agent.ping_timeout is None


@pytest.mark.parametrize("name", TIMEOUTS)
@pytest.mark.parametrize("value", [None, 0.001, 1, 2.5, 3600])
def test_timeout_accepts(name: str, value: float | None) -> None:
    """A timeout is None or a positive number of seconds (stored as float)."""
    kwargs: dict[str, Any] = {name: value}
    stored = getattr(UserAgent(**kwargs), name)
    if value is None:
        assert stored is None
    else:
        assert stored == value
        assert type(stored) is float


@pytest.mark.parametrize("name", TIMEOUTS)
@pytest.mark.parametrize("value", [0, 0.0, -1, -0.5, float("nan")])
def test_timeout_refuses_non_positive(name: str, value: float) -> None:
    """A zero, negative or NaN timeout is a ValueError."""
    kwargs: dict[str, Any] = {name: value}
    with pytest.raises(ValueError, match=name):
        UserAgent(**kwargs)


@pytest.mark.parametrize("name", TIMEOUTS)
@pytest.mark.parametrize("value", [True, False, "10", b"1", [1]])
def test_timeout_refuses_non_numbers(name: str, value: object) -> None:
    """A bool, str or other non-number timeout is a TypeError."""
    kwargs: dict[str, Any] = {name: value}
    with pytest.raises(TypeError, match=name):
        UserAgent(**kwargs)


# Settings: limits.


def test_max_message_size() -> None:
    """max_message_size defaults to 64 MiB and accepts None, 0 and positive sizes."""
    assert UserAgent().max_message_size == 64 * 1024 * 1024
    assert UserAgent(max_message_size=None).max_message_size is None
    assert UserAgent(max_message_size=0).max_message_size == 0
    assert UserAgent(max_message_size=1000).max_message_size == 1000


def test_max_message_size_refuses_negative() -> None:
    """A negative max_message_size is a ValueError."""
    with pytest.raises(ValueError, match="max_message_size"):
        UserAgent(max_message_size=-1)


def test_max_buffered_amount() -> None:
    """max_buffered_amount defaults to 256 MiB and accepts positive sizes."""
    assert DEFAULT_MAX_BUFFERED_AMOUNT == 256 * 1024 * 1024
    assert UserAgent().max_buffered_amount == DEFAULT_MAX_BUFFERED_AMOUNT
    assert UserAgent(max_buffered_amount=1).max_buffered_amount == 1


@pytest.mark.parametrize("value", [0, -1])
def test_max_buffered_amount_refuses_non_positive(value: int) -> None:
    """A zero or negative max_buffered_amount is a ValueError."""
    with pytest.raises(ValueError, match="max_buffered_amount"):
        UserAgent(max_buffered_amount=value)


# Settings: headers, user_agent, blocked_ports.


def test_headers_default_empty() -> None:
    """No extra headers by default."""
    assert UserAgent().headers == ()


def test_headers_mapping() -> None:
    """A mapping of headers becomes a tuple of pairs, in order."""
    agent = UserAgent(headers={"X-One": "1", "Authorization": "Bearer t"})
    assert agent.headers == (("X-One", "1"), ("Authorization", "Bearer t"))


def test_headers_pairs() -> None:
    """Pairs are kept in order, repeated names included; any iterable will do."""
    pairs = [("X-A", "1"), ("X-A", "2"), ("X-B", "")]
    assert UserAgent(headers=pairs).headers == tuple(pairs)
    assert UserAgent(headers=iter(pairs)).headers == tuple(pairs)


@pytest.mark.parametrize(
    "name",
    [
        "Sec-WebSocket-Key",
        "sec-websocket-version",
        "SEC-WEBSOCKET-PROTOCOL",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Foo",
        "sec-websocket-anything",
        "Upgrade",
        "UPGRADE",
        "Connection",
        "connection",
        "Host",
        "hOsT",
    ],
)
def test_headers_refuse_protocol_owned(name: str) -> None:
    """Headers the protocol owns (Sec-WebSocket-*, Upgrade, Connection, Host) are refused."""
    with pytest.raises(ValueError, match="header"):
        UserAgent(headers={name: "x"})
    with pytest.raises(ValueError, match="header"):
        UserAgent(headers=[("X-Fine", "1"), (name, "x")])


@pytest.mark.parametrize(
    "headers",
    [{"X-A": 1}, {b"X-A": "1"}, [("X-A", None)], [(1, "x")], [("X-A", b"1")]],
)
def test_headers_refuse_non_str(headers: Any) -> None:
    """A header name or value that is not a str is a TypeError."""
    with pytest.raises(TypeError, match="str"):
        UserAgent(headers=headers)


def test_user_agent() -> None:
    """user_agent defaults to a wsapi/Python string, and accepts a str or None."""
    default = UserAgent().user_agent
    assert default is not None
    assert default.startswith("wsapi/")
    assert "Python/" in default
    assert UserAgent(user_agent="Mozilla/5.0").user_agent == "Mozilla/5.0"
    assert UserAgent(user_agent=None).user_agent is None


def test_blocked_ports_default_is_fetch_list() -> None:
    """blocked_ports defaults to exactly the Fetch standard's bad-port list."""
    assert UserAgent().blocked_ports == FETCH_BAD_PORTS
    assert frozenset(FETCH_BAD_PORTS) == BAD_PORTS


@pytest.mark.parametrize("port", [25, 6667, 10080, 4190, 6679, 21, 22, 0])
def test_blocked_ports_known_members(port: int) -> None:
    """SMTP, IRC, amanda, sieve, osaut and friends are blocked by default."""
    assert port in UserAgent().blocked_ports


@pytest.mark.parametrize("port", [80, 443, 8080, 8443, 3000])
def test_blocked_ports_web_ports_allowed(port: int) -> None:
    """80, 443 and usual development ports are not blocked by default."""
    assert port not in UserAgent().blocked_ports


def test_blocked_ports_custom() -> None:
    """blocked_ports accepts any iterable of ints and stores a frozenset."""
    assert UserAgent(blocked_ports=[8080, 8080, 9000]).blocked_ports == frozenset({8080, 9000})
    assert UserAgent(blocked_ports=()).blocked_ports == frozenset()
    assert isinstance(UserAgent(blocked_ports=[1]).blocked_ports, frozenset)


def test_repr() -> None:
    """repr names the standard and the origin."""
    text = repr(UserAgent(standard="whatwg", origin="https://app.example/"))
    assert "whatwg" in text
    assert "https://app.example" in text


# proxy_for and the environment.


def test_proxy_for_no_environment(clean_env: pytest.MonkeyPatch) -> None:
    """With no proxy variable set, every connection is direct."""
    agent = UserAgent()
    assert agent.proxy_for(False, "example.com") is None
    assert agent.proxy_for(True, "example.com") is None


@pytest.mark.parametrize("case", CASES)
def test_proxy_for_ws_order(clean_env: pytest.MonkeyPatch, case: Callable[[str], str]) -> None:
    """ws: takes ws_proxy, then http_proxy, then all_proxy."""
    agent = UserAgent()
    clean_env.setenv(case("ws_proxy"), "http://ws.proxy:1")
    clean_env.setenv(case("http_proxy"), "http://http.proxy:2")
    clean_env.setenv(case("all_proxy"), "socks5://all.proxy:3")
    clean_env.setenv(case("wss_proxy"), "http://wss.proxy:4")
    clean_env.setenv(case("https_proxy"), "http://https.proxy:5")
    assert agent.proxy_for(False, "example.com") == "http://ws.proxy:1"
    clean_env.delenv(case("ws_proxy"))
    assert agent.proxy_for(False, "example.com") == "http://http.proxy:2"
    clean_env.delenv(case("http_proxy"))
    assert agent.proxy_for(False, "example.com") == "socks5://all.proxy:3"
    clean_env.delenv(case("all_proxy"))
    assert agent.proxy_for(False, "example.com") is None


@pytest.mark.parametrize("case", CASES)
def test_proxy_for_wss_order(clean_env: pytest.MonkeyPatch, case: Callable[[str], str]) -> None:
    """wss: takes wss_proxy, then https_proxy, then all_proxy."""
    agent = UserAgent()
    clean_env.setenv(case("wss_proxy"), "http://wss.proxy:4")
    clean_env.setenv(case("https_proxy"), "https://https.proxy:5")
    clean_env.setenv(case("all_proxy"), "socks5h://all.proxy:3")
    clean_env.setenv(case("ws_proxy"), "http://ws.proxy:1")
    clean_env.setenv(case("http_proxy"), "http://http.proxy:2")
    assert agent.proxy_for(True, "example.com") == "http://wss.proxy:4"
    clean_env.delenv(case("wss_proxy"))
    assert agent.proxy_for(True, "example.com") == "https://https.proxy:5"
    clean_env.delenv(case("https_proxy"))
    assert agent.proxy_for(True, "example.com") == "socks5h://all.proxy:3"
    clean_env.delenv(case("all_proxy"))
    assert agent.proxy_for(True, "example.com") is None


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", ["ws_proxy", "http_proxy"])
def test_proxy_for_wss_ignores_plain_variables(
    clean_env: pytest.MonkeyPatch, case: Callable[[str], str], name: str
) -> None:
    """ws_proxy and http_proxy do not apply to wss: (and are used for ws:)."""
    clean_env.setenv(case(name), "http://plain.proxy:8")
    agent = UserAgent()
    assert agent.proxy_for(True, "example.com") is None
    assert agent.proxy_for(False, "example.com") == "http://plain.proxy:8"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", ["wss_proxy", "https_proxy"])
def test_proxy_for_ws_ignores_secure_variables(
    clean_env: pytest.MonkeyPatch, case: Callable[[str], str], name: str
) -> None:
    """wss_proxy and https_proxy do not apply to ws: (and are used for wss:)."""
    clean_env.setenv(case(name), "http://secure.proxy:9")
    agent = UserAgent()
    assert agent.proxy_for(False, "example.com") is None
    assert agent.proxy_for(True, "example.com") == "http://secure.proxy:9"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    ("no_proxy", "host", "bypassed"),
    [
        ("example.com", "example.com", True),
        ("example.com", "a.example.com", True),
        (".example.com", "a.example.com", True),
        ("example.com", "a.b.example.com", True),
        ("EXAMPLE.com", "A.Example.COM", True),
        ("example.com", "badexample.com", False),
        ("example.com", "example.org", False),
        ("a.example.com", "example.com", False),
        ("*", "anything.test", True),
        ("*", "127.0.0.1", True),
        ("other.test,example.com", "example.com", True),
        ("other.test, example.com", "a.example.com", True),
        ("other.test , .example.com ,", "a.example.com", True),
        ("other.test", "example.com", False),
        ("example.com:8080", "example.com", True),
        ("example.com:8080", "a.example.com", True),
        ("10.0.0.1", "10.0.0.1", True),
        ("10.0.0.1", "10.0.0.10", False),
        ("10.0.0.1:9000", "10.0.0.1", True),
        ("::1", "::1", True),
        ("[::1]", "::1", True),
        ("[::1]:8080", "::1", True),
        ("2001:db8::1", "2001:db8::1", True),
        ("2001:db8::1", "2001:db8::2", False),
        ("::1", "127.0.0.1", False),
    ],
)
def test_proxy_for_no_proxy(
    clean_env: pytest.MonkeyPatch,
    case: Callable[[str], str],
    no_proxy: str,
    host: str,
    bypassed: bool,
) -> None:
    """no_proxy covers exact hosts, domain suffixes, "*", host:port entries and IPv6."""
    clean_env.setenv(case("all_proxy"), "http://proxy.test:3128")
    clean_env.setenv(case("no_proxy"), no_proxy)
    agent = UserAgent()
    expected = None if bypassed else "http://proxy.test:3128"
    assert agent.proxy_for(False, host) == expected
    assert agent.proxy_for(True, host) == expected


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", "127.1.2.3"])
@pytest.mark.parametrize("no_proxy", [None, "", "example.com"])
def test_proxy_for_no_implicit_loopback_bypass(
    clean_env: pytest.MonkeyPatch, case: Callable[[str], str], host: str, no_proxy: str | None
) -> None:
    """Loopback hosts use the proxy unless no_proxy names them."""
    clean_env.setenv(case("ws_proxy"), "http://proxy.test:3128")
    clean_env.setenv(case("wss_proxy"), "http://proxy.test:3129")
    if no_proxy is not None:
        clean_env.setenv(case("no_proxy"), no_proxy)
    agent = UserAgent()
    assert agent.proxy_for(False, host) == "http://proxy.test:3128"
    assert agent.proxy_for(True, host) == "http://proxy.test:3129"


def test_proxy_for_explicit_ignores_environment(clean_env: pytest.MonkeyPatch) -> None:
    """An explicit proxy URL is used for every host, whatever the environment says."""
    for name in PROXY_VARIABLES:
        clean_env.setenv(name, "http://env.proxy:1")
    clean_env.setenv("no_proxy", "*")
    clean_env.setenv("NO_PROXY", "*")
    agent = UserAgent(proxy="socks5://user:pass@mine.proxy:1080")
    assert agent.proxy_for(False, "example.com") == "socks5://user:pass@mine.proxy:1080"
    assert agent.proxy_for(True, "localhost") == "socks5://user:pass@mine.proxy:1080"


@pytest.mark.parametrize("case", CASES)
def test_proxy_for_none_ignores_environment(
    clean_env: pytest.MonkeyPatch, case: Callable[[str], str]
) -> None:
    """proxy=None connects directly even when proxy variables are set."""
    for name in PROXY_VARIABLES[:-1]:
        clean_env.setenv(case(name), "http://env.proxy:1")
    agent = UserAgent(proxy=None)
    assert agent.proxy_for(False, "example.com") is None
    assert agent.proxy_for(True, "example.com") is None


def test_proxy_for_reads_environment_at_call_time(clean_env: pytest.MonkeyPatch) -> None:
    """The environment is read when a connection is made, not when the agent is built."""
    agent = UserAgent()
    assert agent.proxy_for(False, "example.com") is None
    clean_env.setenv("http_proxy", "http://late.proxy:8")
    assert agent.proxy_for(False, "example.com") == "http://late.proxy:8"


# Cookies.


def cookie_set(header: str | None) -> set[str]:
    """The name=value pairs of a Cookie header."""
    assert header is not None
    return {part.strip() for part in header.split(";")}


def test_cookie_header_none_when_empty() -> None:
    """An empty jar gives no Cookie header."""
    assert UserAgent().cookie_header("http://example.com/") is None


def test_cookie_round_trip() -> None:
    """Cookies stored from Set-Cookie come back in the Cookie header."""
    agent = UserAgent()
    agent.store_cookies(
        "http://example.com/chat",
        [("set-cookie", "a=1"), ("content-type", "text/plain"), ("set-cookie", "b=2; Path=/")],
    )
    assert cookie_set(agent.cookie_header("http://example.com/")) == {"a=1", "b=2"}
    assert cookie_set(agent.cookie_header("https://example.com/chat")) == {"a=1", "b=2"}


def test_cookie_store_ignores_other_headers() -> None:
    """Only set-cookie headers store cookies."""
    agent = UserAgent()
    agent.store_cookies("http://example.com/", [("cookie", "a=1"), ("x-set-cookie", "b=2")])
    agent.store_cookies("http://example.com/", [])
    assert agent.cookie_header("http://example.com/") is None


def test_cookie_uses_given_jar() -> None:
    """Cookies land in the given jar and cookies already in it are sent."""
    jar = CookieJar()
    UserAgent(cookie_jar=jar).store_cookies("http://example.com/", [("set-cookie", "a=1")])
    assert [cookie.name for cookie in jar] == ["a"]
    assert UserAgent(cookie_jar=jar).cookie_header("http://example.com/") == "a=1"


def test_cookie_path() -> None:
    """A cookie with a Path is sent under that path only."""
    agent = UserAgent()
    agent.store_cookies("http://example.com/chat/room", [("set-cookie", "p=1; Path=/chat")])
    assert agent.cookie_header("http://example.com/chat") == "p=1"
    assert agent.cookie_header("http://example.com/chat/other") == "p=1"
    assert agent.cookie_header("http://example.com/") is None
    assert agent.cookie_header("http://example.com/other") is None


def test_cookie_secure_only_on_https() -> None:
    """A Secure cookie is sent to https (wss) URLs only."""
    agent = UserAgent()
    agent.store_cookies("https://example.com/", [("set-cookie", "s=1; Secure; Path=/")])
    assert agent.cookie_header("https://example.com/") == "s=1"
    assert agent.cookie_header("http://example.com/") is None


def test_cookie_httponly_still_sent() -> None:
    """An HttpOnly cookie is sent: the WebSocket handshake is not a non-HTTP API."""
    agent = UserAgent()
    agent.store_cookies("http://example.com/", [("set-cookie", "h=1; HttpOnly; Path=/")])
    assert agent.cookie_header("http://example.com/") == "h=1"
    assert agent.cookie_header("https://example.com/") == "h=1"


@pytest.mark.parametrize(
    "expiry", ["Max-Age=0", "Expires=Thu, 01 Jan 1970 00:00:00 GMT", "Max-Age=-1"]
)
def test_cookie_expired_removed(expiry: str) -> None:
    """A Set-Cookie that has already expired removes the stored cookie."""
    agent = UserAgent()
    agent.store_cookies("http://example.com/", [("set-cookie", "a=1; Path=/")])
    agent.store_cookies("http://example.com/", [("set-cookie", "b=2; Path=/")])
    agent.store_cookies("http://example.com/", [("set-cookie", f"a=gone; Path=/; {expiry}")])
    assert agent.cookie_header("http://example.com/") == "b=2"


def test_cookie_replaced() -> None:
    """A later Set-Cookie of the same name, domain and path replaces the value."""
    agent = UserAgent()
    agent.store_cookies("http://example.com/", [("set-cookie", "a=1; Path=/")])
    agent.store_cookies("http://example.com/", [("set-cookie", "a=2; Path=/")])
    assert agent.cookie_header("http://example.com/") == "a=2"


def test_cookie_other_host_not_sent() -> None:
    """A host-only cookie is not sent to another host, nor to a subdomain or parent."""
    agent = UserAgent()
    agent.store_cookies("http://a.example.com/", [("set-cookie", "a=1; Path=/")])
    assert agent.cookie_header("http://a.example.com/") == "a=1"
    assert agent.cookie_header("http://b.example.com/") is None
    assert agent.cookie_header("http://example.com/") is None
    assert agent.cookie_header("http://x.a.example.com/") is None
    assert agent.cookie_header("http://example.org/") is None


def test_cookie_foreign_domain_refused() -> None:
    """A Set-Cookie for a domain the response's host is not in is not stored."""
    agent = UserAgent()
    agent.store_cookies(
        "http://a.example.com/", [("set-cookie", "evil=1; Domain=example.org; Path=/")]
    )
    assert agent.cookie_header("http://example.org/") is None
    assert agent.cookie_header("http://a.example.com/") is None


# The connection throttle (RFC 6455 4.1 step 2).

KEY = ("127.0.0.1", 8765)


async def test_first_acquirer_does_not_wait() -> None:
    """The first acquirer for a key gets the slot at once."""
    agent = UserAgent()
    await asyncio.wait_for(agent.acquire_connecting_slot(KEY), TIMEOUT)
    agent.release_connecting_slot(KEY)


async def test_second_acquirer_waits_for_release() -> None:
    """A second acquirer for the same key waits until the first releases."""
    agent = UserAgent()
    await agent.acquire_connecting_slot(KEY)
    second = asyncio.create_task(agent.acquire_connecting_slot(KEY))
    await settle()
    assert not second.done()
    agent.release_connecting_slot(KEY)
    await asyncio.wait_for(second, TIMEOUT)
    agent.release_connecting_slot(KEY)
    # Free again: a new acquirer does not wait.
    await asyncio.wait_for(agent.acquire_connecting_slot(KEY), TIMEOUT)
    agent.release_connecting_slot(KEY)


async def test_different_key_does_not_wait() -> None:
    """Keys differing in address or port are throttled independently."""
    agent = UserAgent()
    await agent.acquire_connecting_slot(KEY)
    await asyncio.wait_for(agent.acquire_connecting_slot(("127.0.0.1", 8766)), TIMEOUT)
    await asyncio.wait_for(agent.acquire_connecting_slot(("127.0.0.2", 8765)), TIMEOUT)
    for key in (KEY, ("127.0.0.1", 8766), ("127.0.0.2", 8765)):
        agent.release_connecting_slot(key)


async def test_different_agents_do_not_share_slots() -> None:
    """Each agent has its own throttle."""
    first, second = UserAgent(), UserAgent()
    await first.acquire_connecting_slot(KEY)
    await asyncio.wait_for(second.acquire_connecting_slot(KEY), TIMEOUT)
    first.release_connecting_slot(KEY)
    second.release_connecting_slot(KEY)


async def test_fifo_order() -> None:
    """Three waiters get the slot in the order they asked for it, one at a time."""
    agent = UserAgent()
    order: list[int] = []

    async def connect(number: int) -> None:
        await agent.acquire_connecting_slot(KEY)
        order.append(number)

    await agent.acquire_connecting_slot(KEY)
    tasks = []
    for number in (1, 2, 3):
        tasks.append(asyncio.create_task(connect(number)))
        await settle()
    assert order == []
    for expected in ([1], [1, 2], [1, 2, 3]):
        agent.release_connecting_slot(KEY)
        await settle()
        assert order == expected
    agent.release_connecting_slot(KEY)
    await asyncio.gather(*tasks)


async def test_cancelled_waiter_does_not_block() -> None:
    """A waiter cancelled while queued is skipped: the next waiter gets the slot."""
    agent = UserAgent()
    await agent.acquire_connecting_slot(KEY)
    first = asyncio.create_task(agent.acquire_connecting_slot(KEY))
    second = asyncio.create_task(agent.acquire_connecting_slot(KEY))
    third = asyncio.create_task(agent.acquire_connecting_slot(KEY))
    await settle()
    first.cancel()
    await settle()
    assert first.cancelled()
    agent.release_connecting_slot(KEY)
    await asyncio.wait_for(second, TIMEOUT)
    assert not third.done()
    agent.release_connecting_slot(KEY)
    await asyncio.wait_for(third, TIMEOUT)
    agent.release_connecting_slot(KEY)
    await asyncio.wait_for(agent.acquire_connecting_slot(KEY), TIMEOUT)
    agent.release_connecting_slot(KEY)


async def test_cancelled_only_waiter_frees_key() -> None:
    """After the only waiter is cancelled, a release frees the key for newcomers."""
    agent = UserAgent()
    await agent.acquire_connecting_slot(KEY)
    waiter = asyncio.create_task(agent.acquire_connecting_slot(KEY))
    await settle()
    waiter.cancel()
    await settle()
    assert waiter.cancelled()
    agent.release_connecting_slot(KEY)
    await asyncio.wait_for(agent.acquire_connecting_slot(KEY), TIMEOUT)
    agent.release_connecting_slot(KEY)


async def test_cancelled_waiter_handed_slot_passes_it_on() -> None:
    """A waiter cancelled after being handed the slot passes it to the next one."""
    agent = UserAgent()
    await agent.acquire_connecting_slot(KEY)
    first = asyncio.create_task(agent.acquire_connecting_slot(KEY))
    second = asyncio.create_task(agent.acquire_connecting_slot(KEY))
    await settle()
    agent.release_connecting_slot(KEY)  # Hands the slot to `first`, which has not run yet.
    first.cancel()
    await settle()
    assert first.cancelled()
    await asyncio.wait_for(second, TIMEOUT)
    third = asyncio.create_task(agent.acquire_connecting_slot(KEY))
    await settle()
    assert not third.done()  # `second` holds the slot.
    agent.release_connecting_slot(KEY)
    await asyncio.wait_for(third, TIMEOUT)
    agent.release_connecting_slot(KEY)


async def test_release_without_acquire_is_harmless() -> None:
    """Releasing a key nobody holds does nothing."""
    agent = UserAgent()
    agent.release_connecting_slot(KEY)
    await agent.acquire_connecting_slot(KEY)
    agent.release_connecting_slot(KEY)
    agent.release_connecting_slot(KEY)
    await asyncio.wait_for(agent.acquire_connecting_slot(KEY), TIMEOUT)
    agent.release_connecting_slot(KEY)


def test_throttle_per_loop() -> None:
    """A slot held on one event loop does not hold back another loop."""
    agent = UserAgent()
    first = asyncio.new_event_loop()
    second = asyncio.new_event_loop()
    try:
        first.run_until_complete(agent.acquire_connecting_slot(KEY))
        second.run_until_complete(asyncio.wait_for(agent.acquire_connecting_slot(KEY), TIMEOUT))
        # The first loop's slot is still held there.
        with pytest.raises(asyncio.TimeoutError):
            first.run_until_complete(
                asyncio.wait_for(agent.acquire_connecting_slot(KEY), 0.05 * TIMEOUT)
            )
        second.run_until_complete(_release(agent, KEY))
        first.run_until_complete(_release(agent, KEY))
        first.run_until_complete(asyncio.wait_for(agent.acquire_connecting_slot(KEY), TIMEOUT))
    finally:
        first.close()
        second.close()


async def _release(agent: UserAgent, key: tuple[str, int]) -> None:
    """Release a slot from inside a running loop."""
    agent.release_connecting_slot(key)


# The default agent.


def test_default_agent_is_shared() -> None:
    """default_agent() returns the same default-configured instance every time."""
    agent = default_agent()
    assert isinstance(agent, UserAgent)
    assert default_agent() is agent
    assert default_agent() is default_agent()
    assert agent.standard == "cr-2011"
    assert agent.proxy == "env"


@pytest.mark.skipif(not agent_module._POSIX, reason="the shortcut is POSIX's")
def test_proxy_variables_are_read_without_os_environ_get(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On POSIX the (usually absent) proxy variables are looked up in os.environ's own
    dict, without the KeyError os.environ.get() raises inside; changes are still seen."""

    def no_get(*args: object) -> None:
        raise AssertionError("os.environ.get() was called")

    for name in ("ws_proxy", "WS_PROXY", "wss_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WSS_PROXY", "http://caf\xe9.proxy:1")
    monkeypatch.setattr(os.environ, "get", no_get)
    assert agent_module._getenv("ws_proxy") is None
    assert agent_module._getenv("wss_proxy") == "http://caf\xe9.proxy:1"
    os.environ["WS_PROXY"] = "http://later.proxy:2"  # (monkeypatch's undo calls get())
    try:
        assert agent_module._getenv("ws_proxy") == "http://later.proxy:2"
    finally:
        del os.environ["WS_PROXY"]
