"""What a program gets without the optional dependencies: ``import wsapi`` loads none of them,
a SOCKS proxy without the ``socks`` extra fails the connection with a reason that names the
extra, and ``wsapi`` without the ``cli`` extra says what to install. Each runs in a fresh
interpreter where an import hook makes the packages absent (they stay installed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from support import TIMEOUT

OPTIONAL_MODULES = ("python_socks", "prompt_toolkit", "websockets")


def run_without(blocked: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter in which the ``blocked`` packages cannot be imported."""
    hook = textwrap.dedent(
        f"""
        import sys

        class Absent:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in {blocked!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Absent())
        """
    )
    return subprocess.run(
        [sys.executable, "-c", hook + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60 * TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_import_wsapi_loads_no_optional_dependency() -> None:
    """``import wsapi`` imports neither python_socks, prompt_toolkit nor websockets."""
    result = run_without(
        (),
        """
        import wsapi
        print(sorted(name for name in sys.modules if name.partition(".")[0] in
              ("python_socks", "prompt_toolkit", "websockets")))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_socks_proxy_without_python_socks_is_a_proxy_failure() -> None:
    """Without python-socks, a SOCKS proxy fails the connection ("proxy") naming the extra."""
    result = run_without(
        ("python_socks",),
        """
        import asyncio
        from wsapi import UserAgent, WebSocket

        async def main():
            agent = UserAgent(proxy="socks5://127.0.0.1:1080")
            ws = WebSocket("ws://127.0.0.1:8765/", agent=agent)
            event = await asyncio.wait_for(ws.closed, 30)
            print(event.code, ws.failure.kind)
            print(ws.failure.reason)

        asyncio.run(main())
        """,
    )
    assert result.returncode == 0, result.stderr
    first, reason = result.stdout.splitlines()
    assert first == "1006 proxy"
    assert "SOCKS support is not installed" in reason
    assert "pip install 'wsapi[socks]'" in reason


def test_cli_without_its_extra_says_what_to_install() -> None:
    """``wsapi`` without prompt-toolkit (or websockets) exits 4 with a message, no traceback."""
    for blocked in (("prompt_toolkit",), ("websockets",)):
        result = run_without(
            blocked,
            """
            from wsapi.cli import main
            sys.exit(main([]))
            """,
        )
        assert result.returncode == 4, (blocked, result.stderr)
        assert "pip install 'wsapi[cli]'" in result.stderr
        assert blocked[0].replace("_", "-") in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
