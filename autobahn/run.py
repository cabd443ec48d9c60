#!/usr/bin/env python3
"""Run a WebSocket client driver against the Autobahn|Testsuite fuzzing server.

Usage::

    python autobahn/run.py [--driver "CMD ..."] [--cases "1.*" "2.*" ...] [--exclude ...]
                           [--outdir DIR] [--agent NAME] [--port 0] [--expect-cases N]

Steps: run install.sh (Python 2.7 server in $AUTOBAHN_HOME, default
~/.cache/wsapi-autobahn), write OUTDIR/spec.json, start the server on 127.0.0.1 (log in
OUTDIR/server.log), run the driver with AUTOBAHN_URL and AUTOBAHN_AGENT in its environment
(the driver runs every case and calls /updateReports itself), stop the server, then summarize
OUTDIR/index.json on stdout and in OUTDIR/summary.md.

Exit codes: 0 every case OK/INFORMATIONAL (behavior and behaviorClose), 1 some case is not,
2 harness error (install failed, server did not start, driver failed, report missing or
incomplete), 3 suite not available here (no Python 2.7), 130 interrupted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
INSTALL_SH = HERE / "install.sh"
LAUNCHER = HERE / "launcher.py"
DEFAULT_OUTDIR = HERE / "reports"
DEFAULT_HOME = Path.home() / ".cache" / "wsapi-autobahn"

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_HARNESS = 2
EXIT_SKIPPED = 3

STARTUP_TIMEOUT = 60.0
READY_MARKER = "WSAPI-LAUNCHER LISTENING"  # printed by launcher.py once it listens
GOOD = ("OK", "INFORMATIONAL")
BEHAVIORS = ("OK", "INFORMATIONAL", "NON-STRICT", "FAILED", "UNIMPLEMENTED")


class HarnessError(Exception):
    """Something other than the client under test went wrong."""


def log(msg: str) -> None:
    print(f"[autobahn] {msg}", file=sys.stderr, flush=True)


def loud(msg: str) -> None:
    bar = "=" * 70
    print(f"{bar}\n{msg}\n{bar}", file=sys.stderr, flush=True)


def autobahn_home() -> Path:
    return Path(os.environ.get("AUTOBAHN_HOME") or DEFAULT_HOME)


def run_install() -> Path:
    """Run install.sh; return the py2 interpreter. Exits with 3 if Python 2.7 is missing."""
    env = dict(os.environ, AUTOBAHN_HOME=str(autobahn_home()))
    rc = subprocess.run(["bash", str(INSTALL_SH)], env=env, check=False).returncode
    if rc == EXIT_SKIPPED:
        loud(
            "AUTOBAHN SKIPPED: the Autobahn|Testsuite fuzzing server is not available here\n"
            "(install.sh found no Python 2.7; see its message above)."
        )
        sys.exit(EXIT_SKIPPED)
    if rc != 0:
        raise HarnessError(f"install.sh failed with exit code {rc}")
    py2 = autobahn_home() / "py2" / "bin" / "python"
    if not py2.exists():
        raise HarnessError(f"install.sh succeeded but {py2} does not exist")
    return py2


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_spec(outdir: Path, port: int, cases: list[str], exclude: list[str]) -> Path:
    spec = {
        "url": f"ws://127.0.0.1:{port}",
        "options": {"failByDrop": False},
        "outdir": str(outdir),
        "cases": cases,
        "exclude-cases": exclude,
        "exclude-agent-cases": {},
    }
    path = outdir / "spec.json"
    path.write_text(json.dumps(spec, indent=2) + "\n")
    return path


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server's whole process group (it runs in a session of its own)."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def fuzzing_server(py2: Path, spec: Path, outdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    log_path = outdir / "server.log"
    cmd = [str(py2), "-u", str(LAUNCHER), "-m", "fuzzingserver", "-s", str(spec), "-u", "0"]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            cwd=outdir,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: Ctrl-C does not reach it, killpg does
        )
    try:
        yield proc
    finally:
        stop_server(proc)


def wait_for_port(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    """Wait for the launcher's ready line in the log, then for the port to accept TCP."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    marker = f"{READY_MARKER} 127.0.0.1:{port}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarnessError(
                f"fuzzing server exited with code {proc.returncode} during startup; "
                f"{log_path}:\n{tail(log_path)}"
            )
        if marker in tail(log_path, 200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                    return
            except OSError:
                pass
        time.sleep(0.1)
    raise HarnessError(
        f"fuzzing server did not accept connections on 127.0.0.1:{port} within "
        f"{STARTUP_TIMEOUT:.0f} s; {log_path}:\n{tail(log_path)}"
    )


def check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise HarnessError(f"port 127.0.0.1:{port} is not free: {e}") from e


def server_case_count(log_path: Path) -> int | None:
    """The number of cases the server announced ("Ok, will run N test cases ...")."""
    m = re.search(r"will run (\d+) test cases", tail(log_path, 10_000))
    return int(m.group(1)) if m else None


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in case_id.split("."))


def case_detail(outdir: Path, result: dict[str, Any]) -> str:
    """A short explanation from the per-case JSON report, if it is there."""
    name = result.get("reportfile")
    if not isinstance(name, str):
        return ""
    try:
        report = json.loads((outdir / name).read_text())
    except (OSError, ValueError):
        return ""
    parts = [str(report.get(k)) for k in ("result", "resultClose") if report.get(k)]
    text = " | ".join(parts)
    return text if len(text) <= 200 else text[:197] + "..."


def summarize(outdir: Path, agent: str) -> tuple[bool, int]:
    """Print and write the summary. Returns (all good, number of cases)."""
    index_path = outdir / "index.json"
    if not index_path.exists():
        raise HarnessError(f"{index_path} was not written (did the driver call /updateReports?)")
    try:
        index = json.loads(index_path.read_text())
    except ValueError as e:
        raise HarnessError(f"{index_path} is not valid JSON: {e}") from e
    if agent not in index:
        raise HarnessError(
            f"agent {agent!r} not in {index_path} (agents there: {sorted(index)}); the driver "
            "must use AUTOBAHN_AGENT"
        )
    results: dict[str, dict[str, Any]] = index[agent]
    case_ids = sorted(results, key=case_key)

    sections: dict[int, Counter[str]] = {}
    bad: list[str] = []
    for cid in case_ids:
        r = results[cid]
        behavior, close = str(r.get("behavior")), str(r.get("behaviorClose"))
        counter = sections.setdefault(case_key(cid)[0], Counter())
        counter["cases"] += 1
        counter[behavior] += 1
        if close not in GOOD:
            counter["close not OK"] += 1
        if behavior not in GOOD or close not in GOOD:
            code = r.get("remoteCloseCode")
            detail = case_detail(outdir, r)
            bad.append(
                f"{cid:<9} behavior={behavior:<13} close={close:<13} remoteCloseCode={code}"
                + (f"\n          {detail}" if detail else "")
            )

    columns = ("cases", *BEHAVIORS, "close not OK")
    total: Counter[str] = Counter()
    rows: list[tuple[str, list[int]]] = []
    for sec in sorted(sections):
        total.update(sections[sec])
        rows.append((str(sec), [sections[sec][c] for c in columns]))
    rows.append(("all", [total[c] for c in columns]))
    other = sorted(k for k in total if k not in columns)  # unexpected behavior values

    header = ("section", *columns)
    widths = [max(len(h), 5) for h in header]
    print(f"\nAutobahn|Testsuite results for agent {agent!r} ({len(case_ids)} cases)")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for name, vals in rows:
        cells = [name, *map(str, vals)]
        print("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)))
    if other:
        print(f"other behavior values: {', '.join(f'{k}={total[k]}' for k in other)}")
    if bad:
        print(f"\n{len(bad)} case(s) not OK/INFORMATIONAL:")
        for line in bad:
            print(f"  {line}")
    else:
        print("\nall cases OK/INFORMATIONAL")

    md = [
        f"# Autobahn|Testsuite summary: agent `{agent}`",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|",
    ]
    for name, vals in rows:
        shown = f"**{name}**" if name == "all" else name
        md.append("| " + " | ".join([shown, *map(str, vals)]) + " |")
    md.append("")
    if bad:
        md += [f"## {len(bad)} case(s) not OK/INFORMATIONAL", "", "```", *bad, "```", ""]
    else:
        md += ["All cases OK/INFORMATIONAL.", ""]
    (outdir / "summary.md").write_text("\n".join(md))
    return not bad, len(case_ids)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Run a WebSocket client driver against the Autobahn|Testsuite fuzzing server."
    )
    p.add_argument(
        "--driver",
        default=f"{shlex.quote(sys.executable)} {shlex.quote(str(HERE / 'client.py'))}",
        help="driver command line (split with shlex; gets AUTOBAHN_URL, AUTOBAHN_AGENT); "
        "default: wsapi's driver, autobahn/client.py, on this interpreter",
    )
    p.add_argument(
        "--cases",
        nargs="+",
        default=["*"],
        metavar="GLOB",
        help='case globs (default "*"; note "12.*.1" also matches 12.x.10-18)',
    )
    p.add_argument("--exclude", nargs="+", default=[], metavar="GLOB", help="case globs to skip")
    p.add_argument(
        "--outdir",
        type=Path,
        default=DEFAULT_OUTDIR,
        help=f"report directory (default {DEFAULT_OUTDIR})",
    )
    p.add_argument("--agent", default="wsapi", help="agent name (default wsapi)")
    p.add_argument("--port", type=int, default=0, help="server port (default 0: pick a free one)")
    p.add_argument(
        "--expect-cases",
        type=int,
        default=None,
        metavar="N",
        help="harness error unless the report has exactly N cases",
    )
    p.add_argument(
        "--driver-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="harness error if the driver runs longer (default: no limit)",
    )
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    driver_cmd = shlex.split(args.driver)
    if not driver_cmd:
        raise HarnessError("--driver is empty")

    py2 = run_install()
    t_install = time.monotonic() - t0

    outdir: Path = args.outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    for stale in ("index.json", "index.html", "summary.md"):
        (outdir / stale).unlink(missing_ok=True)
    if args.port:
        check_port_free(args.port)
    port: int = args.port or free_port()
    url = f"ws://127.0.0.1:{port}"
    spec = write_spec(outdir, port, args.cases, args.exclude)
    log_path = outdir / "server.log"

    with fuzzing_server(py2, spec, outdir) as proc:
        t1 = time.monotonic()
        wait_for_port(proc, port, log_path)
        t_start = time.monotonic() - t1
        announced = server_case_count(log_path)
        cases_note = f"{announced} cases" if announced is not None else "case count unknown"
        log(f"server up at {url} ({cases_note}), log {log_path}")
        log(f"driver: {shlex.join(driver_cmd)}")
        env = dict(os.environ, AUTOBAHN_URL=url, AUTOBAHN_AGENT=args.agent)
        t2 = time.monotonic()
        try:
            driver_rc = subprocess.run(
                driver_cmd, env=env, check=False, timeout=args.driver_timeout
            ).returncode
        except subprocess.TimeoutExpired:
            driver_rc = None
        except OSError as e:
            raise HarnessError(f"cannot run driver: {e}") from e
        t_driver = time.monotonic() - t2
        announced = server_case_count(log_path) if announced is None else announced

    errors: list[str] = []
    if driver_rc is None:
        errors.append(f"driver timed out after {args.driver_timeout} s")
    elif driver_rc != 0:
        errors.append(f"driver exited with code {driver_rc}")
    all_good, n_cases = False, 0
    try:
        all_good, n_cases = summarize(outdir, args.agent)
    except HarnessError as e:
        errors.append(str(e))
    else:
        if announced is not None and n_cases != announced:
            errors.append(f"report has {n_cases} cases, the server announced {announced}")
        if args.expect_cases is not None and n_cases != args.expect_cases:
            errors.append(f"report has {n_cases} cases, expected {args.expect_cases}")

    total = time.monotonic() - t0
    print(
        f"\ntime: total {total:.1f} s (install {t_install:.1f} s, server start "
        f"{t_start:.1f} s, driver {t_driver:.1f} s)"
    )
    if (outdir / "summary.md").exists():
        print(f"reports: {outdir / 'index.html'}, summary: {outdir / 'summary.md'}")
    print(f"server log: {log_path}")
    if errors:
        for err in errors:
            log(f"HARNESS ERROR: {err}")
        return EXIT_HARNESS
    return EXIT_OK if all_good else EXIT_FAILURES


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # keep order with stderr and the driver
    # Make Ctrl-C / SIGTERM raise KeyboardInterrupt even if SIGINT was ignored by our parent
    # (background jobs of non-interactive shells), so the finally blocks stop the server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        return run(args)
    except HarnessError as e:
        log(f"HARNESS ERROR: {e}")
        return EXIT_HARNESS
    except KeyboardInterrupt:
        log("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
