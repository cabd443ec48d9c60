"""Opening a connection: RFC 6455 4.1 "establish a WebSocket connection".

DNS, the one-connection-in-CONNECTING-per-address rule of 4.1, TCP (directly or through a
proxy's tunnel), TLS, then the pump (``pump.ConnectionPump``) that sends the handshake request
and reads the answer. Plain TCP on the default loop goes through wsapi's own socket transport
(``socket_transport``); TLS, proxies and other loops through asyncio's.

Every failure is reported as a ``ConnectionFailure`` whose ``kind`` says which step failed:
``FAILURES`` maps the exceptions each step may raise to a kind and a sentence, in one table.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
import ssl
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Literal, cast

from .agent import UserAgent
from .deadlines import Timer, deadlines_of
from .errors import ConnectionFailure, FailureKind
from .protocol.engine import ClientConnection, State
from .proxy import ProxyError, ProxyURL, open_tunnel, parse_proxy_url
from .pump import ConnectionHandler, ConnectionPump, fail_without_a_connection
from .socket_transport import open_connection, socket_transport_used_on
from .url import WebSocketURL

__all__ = ["FAILURES", "establish_a_websocket_connection"]

logger = logging.getLogger("wsapi")

Step = Literal["choose the proxy", "resolve", "wait", "connect"]
"""The steps of the opening that may raise: reading the proxy setting; resolving the host
name; waiting for the address's connecting slot (4.1 step 2); TCP, the proxy and TLS."""

_CANCELLED = "the connection was cancelled while"
_TLS_FAILED = "the TLS handshake with {where} failed"

FAILURES: tuple[tuple[Step, type[BaseException], FailureKind, str], ...] = (
    ("choose the proxy", ValueError, "proxy", "the proxy setting is not usable: {detail}"),
    ("resolve", asyncio.CancelledError, "aborted", f"{_CANCELLED} resolving the host"),
    ("resolve", asyncio.TimeoutError, "timeout", "resolving {host} took more than {timeout} s"),
    # The URL parser allows what DNS cannot carry (an empty label, one over 63 characters),
    # and the resolver's IDNA step raises for it.
    ("resolve", UnicodeError, "dns", "could not resolve {host}: it is not a name DNS can carry"),
    ("resolve", OSError, "dns", "could not resolve {host}: {detail}"),
    ("wait", asyncio.CancelledError, "aborted", f"{_CANCELLED} waiting for its turn"),
    ("connect", asyncio.CancelledError, "aborted", f"{_CANCELLED} connecting"),
    (
        "connect",
        asyncio.TimeoutError,
        "timeout",
        "connecting to {where} took more than {timeout} s",
    ),
    ("connect", ProxyError, "proxy", "{detail}"),
    (
        "connect",
        ssl.SSLCertVerificationError,
        "tls",
        "the TLS certificate of {where} was refused: {verify_message}",
    ),
    ("connect", ssl.SSLError, "tls", f"{_TLS_FAILED}: {{detail}}"),
    ("connect", ssl.CertificateError, "tls", f"{_TLS_FAILED}: {{detail}}"),
    ("connect", ConnectionRefusedError, "refused", "{where} refused the connection"),
    # wss: TCP was up (a refusal is the row above): the server dropped the TLS handshake, as
    # a server that does not speak TLS does.
    (
        "connect",
        ConnectionError,
        "tls",
        f"{_TLS_FAILED}: the server closed the connection ({{detail}}; is it a TLS server?)",
    ),
    ("connect", OSError, "unreachable", "could not connect to {where}: {detail}"),
    ("connect", TypeError, "unreachable", "could not connect to {where}: {detail}"),
)
"""What each step's exceptions mean, as (step, exception class, kind, reason): the first row
of the step whose class matches decides. (The TLS row for ``ConnectionError`` applies to
``wss:`` only.) An exception no row matches is a bug: it is reported to the loop's exception
handler, and the connection still fails, with the kind of ``UNKNOWN``."""

UNKNOWN: dict[Step, tuple[FailureKind, str]] = {
    "choose the proxy": ("proxy", "the proxy setting is not usable: {detail}"),
    "resolve": ("dns", "could not resolve {host}: {detail}"),
    "wait": ("aborted", "could not wait for a connection to {where}: {detail}"),
    "connect": ("unreachable", "could not connect to {where}: {detail}"),
}
"""The kind and reason of an exception no row of ``FAILURES`` knows, by step."""


def failure_of(
    error: BaseException, step: Step, url: WebSocketURL, timeout: float | None
) -> tuple[ConnectionFailure, bool]:
    """The ``ConnectionFailure`` that ``error``, raised by ``step``, means; and whether
    ``FAILURES`` knows the error."""
    detail = (error.strerror if isinstance(error, OSError) else None) or str(error)
    detail = detail or type(error).__name__
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    if isinstance(error, ProxyError):
        detail, status, headers = error.reason, error.status_code, error.headers
    values = {
        "host": url.host,
        "where": f"{url.host}:{url.port}",
        "timeout": timeout,
        "detail": detail,
        "verify_message": getattr(error, "verify_message", ""),
    }
    for row_step, error_class, kind, reason in FAILURES:
        if row_step != step or not isinstance(error, error_class):
            continue
        if kind == "tls" and error_class is ConnectionError and not url.secure:
            continue
        return ConnectionFailure(kind, reason.format(**values), status, headers), True
    kind, reason = UNKNOWN[step]
    return ConnectionFailure(kind, reason.format(**values)), False


def establish_a_websocket_connection(
    agent: UserAgent,
    url: WebSocketURL,
    handler: ConnectionHandler,
    *,
    protocols: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
) -> Coroutine[object, None, ConnectionPump | None]:
    """RFC 6455 4.1 "establish a WebSocket connection", in the background of the API's
    constructor (a coroutine to await in the current task). Never raises for a network
    problem: a failure is reported to ``handler`` (``_on_failure`` then ``_on_closed`` with
    1006) and None is returned. Cancelling it (the program ends, or close() before open)
    reports an "aborted" failure and re-raises."""
    # (Each step's coroutine is made only when it waits: a coroutine per step and per
    # connection is memory the allocator gets back only in part.)
    return _Opening(agent, url, handler, protocols, headers).run()


_HAS_UNCANCEL = sys.version_info >= (3, 11)


class _Opening:
    """One run of ``establish_a_websocket_connection``: the state its steps share."""

    __slots__ = (
        "agent",
        "deadlines",
        "engine",
        "handler",
        "headers",
        "key",
        "loop",
        "open_timeout",
        "protocols",
        "pump",
        "pumps_made",
        "slot_held",
        "task",
        "timed_out",
        "timer",
        "url",
    )

    def __init__(
        self,
        agent: UserAgent,
        url: WebSocketURL,
        handler: ConnectionHandler,
        protocols: Sequence[str],
        headers: Sequence[tuple[str, str]],
    ) -> None:
        self.agent = agent
        self.url = url
        self.handler = handler
        self.protocols = protocols
        self.headers = headers
        self.loop = asyncio.get_running_loop()
        self.deadlines = deadlines_of(self.loop)
        self.task = asyncio.current_task()
        self.open_timeout = agent.open_timeout
        self.engine: ClientConnection | None = None
        # The pumps the transport made (one, unless a connect attempt failed after making
        # it), and the one whose connection is up, once known.
        self.pumps_made: list[ConnectionPump] = []
        self.pump: ConnectionPump | None = None
        # The address whose connecting slot (4.1 step 2) is held, and whether it still is.
        self.key: tuple[str, int] | None = None
        self.slot_held = False
        # open_timeout: one timer from the end of DNS (or of the wait for the slot) to the
        # end of the opening handshake, and whether it cancelled the task.
        self.timer: Timer | None = None
        self.timed_out = False

    async def run(self) -> ConnectionPump | None:
        agent, url, loop = self.agent, self.url, self.loop
        try:
            proxy_url = agent.proxy_for(url.secure, url.host)
            proxy = None if proxy_url is None else parse_proxy_url(proxy_url)
        except Exception as exc:
            self.fail_with(exc, "choose the proxy")
            return None
        started = loop.time()
        if proxy is not None:
            logger.debug("connecting to %s through the proxy %s", url.shown, proxy)
        else:
            logger.debug("connecting to %s", url.shown)
        addresses = self.addresses_without_lookup(proxy)
        if addresses is None:
            addresses = await self.resolve()
            if addresses is None:
                return None
        key = (addresses[0], url.port)
        waited = False
        if not agent.try_connecting_slot(key):
            waited = await self.wait_for_connecting_slot(key)
        self.key = key
        self.slot_held = True
        # open_timeout covers DNS, TCP, the proxy, TLS and the handshake together; a
        # connection that had to wait in that queue gets it afresh from when it leaves it.
        deadline = None
        if self.open_timeout is not None:
            deadline = (loop.time() if waited else started) + self.open_timeout
        try:
            self.engine = ClientConnection(
                url.host_header,
                url.resource_name,
                protocols=self.protocols,
                headers=self.headers,
                max_message_size=agent.max_message_size,
                compression=agent.compression,
            )
        except ValueError as exc:
            # A request that cannot be written as it is (a cookie of the jar with CR or LF
            # in its value would add a header line): refused before anything is sent.
            self.fail(ConnectionFailure("blocked", f"the handshake request was refused: {exc}"))
            return None
        pump = await self.connect(addresses, proxy, deadline)
        if pump is None:
            return None
        self.pump = pump
        if deadline is not None:
            timer = self.timer
            if timer is None:
                timer = self.deadlines.call_at(deadline, self.open_timer_expired)
            if self.engine.state is State.CONNECTING:
                pump.adopt_open_timer(timer)
            else:
                self.deadlines.cancel(timer)
        return pump

    def addresses_without_lookup(self, proxy: ProxyURL | None) -> list[str] | None:
        """The throttle of 4.1 step 2 is per IP address, "even if the remote host is known
        by another name": the name is resolved first -- unless the proxy resolves names
        (the throttle is then per host name), or the host is an IP address already (no trip
        through the resolver's thread pool). The one address in those cases, else None."""
        url = self.url
        if (proxy is not None and proxy.resolves_names) or _is_ip_address(url.host):
            return [url.host]
        return None

    async def resolve(self) -> list[str] | None:
        """The host's addresses, in the resolver's order (None: the failure is reported)."""
        url = self.url
        lookup = self.loop.getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
        try:
            infos = await asyncio.wait_for(lookup, self.open_timeout)
        except asyncio.CancelledError as exc:
            self.fail_with(exc, "resolve")
            raise
        except Exception as exc:
            self.fail_with(exc, "resolve")
            return None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def wait_for_connecting_slot(self, key: tuple[str, int]) -> bool:
        """4.1 step 2: "If the client already has a WebSocket connection to the remote host
        (IP address) identified by /host/ and port /port/ pair, even if the remote host is
        known by another name, the client MUST wait until that connection has been
        established or for that connection to have failed." Whether it had to wait."""
        try:
            return await self.agent.acquire_connecting_slot(key)
        except asyncio.CancelledError as exc:
            self.fail_with(exc, "wait")
            raise

    def release_connecting_slot(self) -> None:
        """The connection left CONNECTING (or never will): the next one may go."""
        if self.slot_held and self.key is not None:
            self.slot_held = False
            self.agent.release_connecting_slot(self.key)

    async def connect(
        self, addresses: list[str], proxy: ProxyURL | None, deadline: float | None
    ) -> ConnectionPump | None:
        """TCP, the proxy and TLS under ``open_timeout``; the pump once its connection is up
        (None: the failure is reported). Until the connection exists the timer cancels this
        task, as asyncio.timeout() would (Task.uncancel(), from Python 3.11, tells its
        cancellation from anyone else's); then it fails the handshake. Python 3.10 takes
        asyncio.wait_for() to connect, then the timer."""
        if deadline is not None and _HAS_UNCANCEL:
            self.timer = self.deadlines.call_at(deadline, self.open_timer_expired)
        connecting = _open_transport(self.agent, self.url, addresses, proxy, self.make_pump)
        try:
            if deadline is not None and self.timer is None:
                return await asyncio.wait_for(connecting, max(0.0, deadline - self.loop.time()))
            return await connecting
        except asyncio.CancelledError as exc:
            if not (self.timed_out and self.task is not None and _only_ours(self.task)):
                self.fail_with(exc, "connect")
                raise
            error: BaseException = asyncio.TimeoutError()  # Our timer's cancellation.
        except Exception as exc:
            error = exc
        self.fail_with(error, "connect")
        return None

    def make_pump(self) -> ConnectionPump:
        """The protocol factory of the transport."""
        assert self.engine is not None
        agent = self.agent
        pump = ConnectionPump(
            self.engine,
            self.handler,
            close_timeout=agent.close_timeout,
            ping_interval=agent.ping_interval,
            ping_timeout=agent.ping_timeout,
            release_connecting_slot=self.release_connecting_slot,
        )
        self.pumps_made.append(pump)
        return pump

    def open_timer_expired(self) -> None:
        if self.pump is not None:
            self.pump.open_timed_out(self.open_timeout or 0.0)
        elif self.task is not None:
            self.timed_out = True
            self.task.cancel()

    def fail_with(self, error: BaseException, step: Step) -> None:
        """Fail the connection for ``error``, which ``step`` raised."""
        failure, known = failure_of(error, step, self.url, self.open_timeout)
        if not known:
            # No row of FAILURES knows it: a bug here or in a library below. It is reported
            # as one, and the connection still ends in its events instead of waiting forever.
            self.loop.call_exception_handler(
                {
                    "message": f"wsapi: unexpected error while connecting to {self.url.shown}",
                    "exception": error,
                }
            )
        self.fail(failure)

    def fail(self, failure: ConnectionFailure) -> None:
        """RFC 6455 7.1.7 "Fail the WebSocket Connection" while opening: through the pump
        once its connection is up (it reports, then closes it), else reported at once."""
        if self.timer is not None:
            self.deadlines.cancel(self.timer)
            self.timer = None
        self.release_connecting_slot()
        live = next((pump for pump in self.pumps_made if pump.transport is not None), None)
        if live is not None:
            live.fail_the_websocket_connection(None, failure.reason, failure.kind)
            live.abort()
        else:
            fail_without_a_connection(self.handler, failure)


def _only_ours(task: asyncio.Task[object]) -> bool:
    """Withdraw our cancellation of ``task``; whether no one else cancelled it as well."""
    if sys.version_info >= (3, 11):
        return task.uncancel() == 0
    return False  # (Python 3.10 times the connection out with wait_for.)


async def _open_transport(
    agent: UserAgent,
    url: WebSocketURL,
    addresses: list[str],
    proxy: ProxyURL | None,
    make_pump: Callable[[], ConnectionPump],
) -> ConnectionPump:
    """TCP (directly or through the proxy), then TLS for wss:, then the pump starts the
    handshake. Raises what failed."""
    loop = asyncio.get_running_loop()
    context = _ssl_context(agent) if url.secure else None
    server_hostname = url.host if context is not None else None
    if proxy is None:
        error: BaseException | None = None
        # Plain TCP on the default loop: our own transport (socket_transport.py says why).
        own_transport = context is None and socket_transport_used_on(loop)
        for address in addresses:
            try:
                if own_transport:
                    _, pump = await open_connection(loop, make_pump, address, url.port)
                else:
                    # (The pump is a buffered protocol without subclassing asyncio's.)
                    _, protocol = await loop.create_connection(
                        cast(Callable[[], asyncio.BaseProtocol], make_pump),
                        address,
                        url.port,
                        ssl=context,
                        server_hostname=server_hostname,
                    )
                    pump = cast(ConnectionPump, protocol)
                return pump
            except OSError as exc:
                error = exc
                if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
                    break  # The address answered: another one would answer the same.
        assert error is not None
        raise error
    target = url.host if proxy.resolves_names else addresses[0]
    transport, leftover = await open_tunnel(
        proxy, target, url.port, ssl_context=_ssl_context(agent), user_agent=agent.user_agent
    )
    try:
        if context is not None:
            # TLS with the server, inside the tunnel (TLS in TLS through an https proxy).
            try:
                tls = await loop.start_tls(
                    transport, transport.get_protocol(), context, server_hostname=server_hostname
                )
            except TypeError as exc:  # Python 3.10 cannot start TLS inside TLS.
                raise ProxyError(
                    f"TLS to the server inside the TLS connection to the proxy {proxy} needs "
                    "Python 3.11 or later"
                ) from exc
            if tls is None:
                raise ProxyError(f"the TLS handshake through the proxy {proxy} was cut off")
            transport = tls
        pump = make_pump()
        transport.set_protocol(cast(asyncio.BaseProtocol, pump))
        pump.connection_made(transport)
        if leftover:
            pump.data_received(leftover)
        return pump
    except BaseException:
        transport.abort()
        raise


@functools.lru_cache(maxsize=256)
def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_default_contexts: dict[int, ssl.SSLContext] = {}


def _ssl_context(agent: UserAgent) -> ssl.SSLContext:
    if agent.ssl_context is not None:
        return agent.ssl_context
    # One verifying context serves every agent without one: loading the trust store costs
    # milliseconds, and the context holds no per-connection state.
    context = _default_contexts.get(0)
    if context is None:
        context = _default_contexts[0] = ssl.create_default_context()
    return context
