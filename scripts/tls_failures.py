"""Print what a user sees for each TLS failure (docs/security.md's table): a TLS server on
127.0.0.1 per case, with certificates made by trustme, and the ``ConnectionFailure`` of a
``WebSocket`` that connects to it. Needs the dev extra (trustme).

    .venv/bin/python scripts/tls_failures.py
"""

from __future__ import annotations

import asyncio
import datetime
import re
import ssl
import warnings

import trustme

from wsapi import UserAgent, WebSocket


def _server_context(leaf: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return context


def _cases() -> list[tuple[str, ssl.SSLContext | None, str, UserAgent]]:
    """(case, server context or None for plain TCP, URL scheme and host, agent)."""
    ca = trustme.CA()
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    old_tls = _server_context(ca.issue_cert("localhost"))
    with warnings.catch_warnings():  # Python deprecates the old versions: the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        old_tls.minimum_version = ssl.TLSVersion.TLSv1
        old_tls.maximum_version = ssl.TLSVersion.TLSv1_1
    old_tls.set_ciphers("DEFAULT:@SECLEVEL=0")
    default = UserAgent(proxy=None)
    custom = UserAgent(proxy=None, ssl_context=trusting)
    good = _server_context(ca.issue_cert("localhost"))
    other_ca = _server_context(trustme.CA().issue_cert("localhost"))
    other_name = _server_context(ca.issue_cert("wrong.example"))
    expired = _server_context(
        ca.issue_cert("localhost", not_before=now - 30 * day, not_after=now - day)
    )
    early = _server_context(
        ca.issue_cert("localhost", not_before=now + day, not_after=now + 30 * day)
    )
    host = "wss://localhost"
    return [
        ("a private CA, default context", good, host, default),
        ("another CA than the one trusted", other_ca, host, custom),
        ("a certificate for another name", other_name, host, custom),
        ("an IP address not in the certificate", good, "wss://127.0.0.1", custom),
        ("an expired certificate", expired, host, custom),
        ("a certificate not yet valid", early, host, custom),
        ("a server with TLS 1.1 at most (asyncio)", old_tls, host, custom),
        ("a server without TLS", None, host, custom),
        ("an https:// proxy from a private CA", good, "proxy", default),
    ]


async def _case(server_context: ssl.SSLContext | None, where: str, agent: UserAgent) -> str:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # (A server without TLS reads the ClientHello, and hangs up.)
        writer.close()

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, _context: None)  # The servers' own TLS errors.
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        if where == "proxy":
            agent = UserAgent(proxy=f"https://localhost:{port}")
            url = "ws://127.0.0.1:1234/"
        else:
            url = f"{where}:{port}/"
        ws = WebSocket(url, agent=agent)
        await asyncio.wait_for(ws.closed, 10)
        assert ws.failure is not None
        reason = re.sub(rf"\b{port}\b", "PORT", ws.failure.reason)
        return f"`{ws.failure.kind}` | {reason}"
    finally:
        server.close()


async def main() -> None:
    print("| Case | `failure.kind` | `failure.reason` |")
    print("|---|---|---|")
    for case, context, where, agent in _cases():
        print(f"| {case} | {await _case(context, where, agent)} |")


if __name__ == "__main__":
    asyncio.run(main())
