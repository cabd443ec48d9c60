"""Tests of WebSocket URL parsing (RFC 6455 3 on the WHATWG URL parser)."""

from __future__ import annotations

import pytest

from wsapi.url import WebSocketURL, parse_websocket_url


def test_ws_default_port() -> None:
    """ws: without a port is port 80, not secure."""
    url = parse_websocket_url("ws://example.com/chat")
    assert url == WebSocketURL("ws://example.com/chat", False, "example.com", 80, "/chat")


def test_wss_default_port() -> None:
    """wss: without a port is port 443, secure."""
    url = parse_websocket_url("wss://example.com/chat")
    assert url == WebSocketURL("wss://example.com/chat", True, "example.com", 443, "/chat")


def test_explicit_ports() -> None:
    """An explicit port is kept, including the other scheme's default."""
    assert parse_websocket_url("ws://h:8080/").port == 8080
    assert parse_websocket_url("wss://h:8443/").port == 8443
    assert parse_websocket_url("ws://h:443/").port == 443
    assert parse_websocket_url("wss://h:80/").port == 80


def test_explicit_default_port() -> None:
    """Writing the default port gives the same URL as leaving it out."""
    assert parse_websocket_url("ws://h:80/x") == parse_websocket_url("ws://h/x")
    assert parse_websocket_url("wss://h:443/x") == parse_websocket_url("wss://h/x")


def test_ipv6_host() -> None:
    """An IPv6 literal gives the address without brackets, for connecting."""
    url = parse_websocket_url("ws://[::1]:8080/x")
    assert url.host == "::1"
    assert url.port == 8080
    assert url.resource_name == "/x"


def test_ipv6_host_is_normalized() -> None:
    """IPv6 literals are serialized in their canonical form."""
    assert parse_websocket_url("wss://[0:0:0:0:0:0:0:1]/").host == "::1"


def test_host_header_without_default_port() -> None:
    """The Host header omits the scheme's default port."""
    assert parse_websocket_url("ws://example.com/").host_header == "example.com"
    assert parse_websocket_url("wss://example.com:443/").host_header == "example.com"


def test_host_header_with_port() -> None:
    """The Host header has ":port" when the port is not the scheme's default."""
    assert parse_websocket_url("ws://example.com:8080/").host_header == "example.com:8080"
    assert parse_websocket_url("ws://example.com:443/").host_header == "example.com:443"
    assert parse_websocket_url("wss://example.com:80/").host_header == "example.com:80"


def test_host_header_ipv6() -> None:
    """The Host header puts brackets around an IPv6 address."""
    assert parse_websocket_url("ws://[::1]/").host_header == "[::1]"
    assert parse_websocket_url("ws://[::1]:9000/").host_header == "[::1]:9000"


def test_host_is_lower_cased() -> None:
    """Scheme and host are ASCII case-insensitive and come out lower-cased."""
    url = parse_websocket_url("WSS://Example.COM/Path")
    assert url.secure
    assert url.host == "example.com"
    assert url.resource_name == "/Path"


def test_resource_name_empty_path() -> None:
    """An empty path becomes "/"."""
    assert parse_websocket_url("ws://h").resource_name == "/"


def test_resource_name_with_query() -> None:
    """The resource name is the path, "?" and the query."""
    assert parse_websocket_url("ws://h/a/b?x=1&y=2").resource_name == "/a/b?x=1&y=2"
    assert parse_websocket_url("ws://h?x=1").resource_name == "/?x=1"


def test_resource_name_with_empty_query() -> None:
    """An empty query keeps its "?" ("ws://h/?" has resource name "/?")."""
    assert parse_websocket_url("ws://h/?").resource_name == "/?"
    assert parse_websocket_url("ws://h/a?").resource_name == "/a?"


def test_resource_name_is_percent_encoded() -> None:
    """Spaces in path and query are percent-encoded in the resource name."""
    assert parse_websocket_url("ws://h/a b?c d").resource_name == "/a%20b?c%20d"


@pytest.mark.parametrize("url", ["ws://h/#", "ws://h/#frag", "ws://h#", "wss://h/?q#f"])
def test_fragment_refused(url: str) -> None:
    """A fragment, even an empty one, is refused (RFC 6455 3)."""
    with pytest.raises(ValueError, match="fragment"):
        parse_websocket_url(url)


@pytest.mark.parametrize("url", ["http://h/", "https://h/", "ftp://h/", "file:///x"])
def test_other_schemes_refused(url: str) -> None:
    """Only ws and wss are WebSocket schemes."""
    with pytest.raises(ValueError, match="scheme"):
        parse_websocket_url(url)


@pytest.mark.parametrize("url", ["/chat", "chat", "//h/chat", "", "ws://", "ws://h:99999/"])
def test_relative_or_invalid_url_refused(url: str) -> None:
    """A relative or unparsable URL is refused with ValueError."""
    with pytest.raises(ValueError, match="not an absolute URL"):
        parse_websocket_url(url)


def test_idn_host_punycode() -> None:
    """An internationalized host name is converted to punycode."""
    url = parse_websocket_url("wss://bücher.example/")
    assert url.host == "xn--bcher-kva.example"
    assert url.host_header == "xn--bcher-kva.example"
    assert url.href == "wss://xn--bcher-kva.example/"


def test_href_is_serialized_url() -> None:
    """href is the WHATWG serialization."""
    assert parse_websocket_url("ws://H:80?a").href == "ws://h/?a"
