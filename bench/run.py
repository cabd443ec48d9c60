"""Speed of wsapi next to other Python WebSocket clients, measured side by side in one run.

    python bench/run.py                       # 5 repetitions, a few minutes
    python bench/run.py --quick               # smoke test, tiny sizes, 1 repetition
    python bench/run.py --reps 3 --clients wsapi@uvloop picows@uvloop --scenarios A,B64
    python bench/run.py --clients wsapi@asyncio wsapi-pure@asyncio --out pure.json
    python bench/run.py --plot results.json chart.png   # the ratios as a chart (matplotlib)

Starts ``server.py`` once, then runs every (scenario, client) measurement in a fresh
``client.py`` process. Within each repetition and scenario the clients run one after the
other in an order shuffled with a seeded RNG, so that every ratio compares two measurements
taken seconds apart. Prints Markdown tables (medians, noise, paired ratios) and writes every
measurement to a JSON file. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass
from typing import IO, Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = sys.executable


@dataclass(frozen=True)
class Scenario:
    letter: str  # client.py's scenario
    what: str
    unit: str
    n: int
    size: int
    warm: int
    quick_n: int
    quick_warm: int
    higher_is_better: bool = True


SCENARIOS: dict[str, Scenario] = {
    "A": Scenario("A", "round trip of a 32-byte text message", "rt/s", 20000, 0, 1000, 1000, 100),
    "B64": Scenario(
        "B", "server pushes 64-byte text messages", "msg/s", 10**6, 64, 20000, 20000, 1000
    ),
    "B1K": Scenario(
        "B", "server pushes 1 KiB text messages", "msg/s", 200000, 1024, 20000, 5000, 500
    ),
    "C": Scenario("C", "client sends 1 MiB binary messages", "GB/s", 1024, 1 << 20, 16, 16, 2),
    "D": Scenario("D", "open + close handshake, sequential", "conn/s", 1000, 0, 20, 50, 5),
    "E": Scenario("E", "RSS per idle open connection", "KiB/conn", 1000, 0, 0, 100, 0, False),
}

LIBS = (
    "wsapi",
    "wsapi-pure",
    "wsapi-stream",
    "wsapi-connect",
    "wsapi-sync",
    "websockets",
    "websockets-sync",
    "websocket-client",
    "picows",
)
LOOPS = ("asyncio", "uvloop")
DEFAULT_CLIENTS = [
    "wsapi@asyncio",
    "wsapi@uvloop",
    "websockets@asyncio",
    "picows@asyncio",
    "picows@uvloop",
]
# The module a client's library needs: a client whose module does not import is skipped.
MODULE = {
    "wsapi": "wsapi",
    "wsapi-pure": "wsapi",
    "wsapi-stream": "wsapi",
    "wsapi-connect": "wsapi",
    "wsapi-sync": "wsapi",
    "websockets": "websockets",
    "websockets-sync": "websockets",
    "websocket-client": "websocket",
    "picows": "picows",
}
# Extra environment of a client's process: wsapi-pure is wsapi without its compiled codec.
CLIENT_ENV = {"wsapi-pure": {"WSAPI_PURE_PYTHON": "1"}}
WSAPI_LIBS = ("wsapi", "wsapi-pure", "wsapi-stream", "wsapi-connect", "wsapi-sync")
# The scenarios a client's library measures, by their first letter (all, when not listed).
ONLY = {
    "wsapi-stream": "AB",
    "wsapi-connect": "AB",
    "wsapi-sync": "AB",
    "websockets-sync": "AB",
    "websocket-client": "AB",
}


def measures(client: str, scenario: str) -> bool:
    """Whether ``client`` takes part in ``scenario``."""
    return scenario[0] in ONLY.get(client.partition("@")[0], scenario[0])


DEFAULT_REPS = 5
DEFAULT_CAP = 2.0
QUICK_CAP = 0.5


def split_names(values: list[str] | None, default: list[str]) -> list[str]:
    """Accepts ``--clients a b`` as well as ``--clients a,b``."""
    if not values:
        return list(default)
    return [name for value in values for name in value.split(",") if name]


# The environment: versions, importability, machine.

PROBE = r"""
import importlib, importlib.metadata, json, sys
out = {}
for name in sys.argv[1:]:
    info = {}
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
    else:
        try:
            info["version"] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info["version"] = getattr(module, "__version__", None)
        info["file"] = getattr(module, "__file__", None)
        if name == "wsapi":
            codec = importlib.import_module("wsapi.protocol.codec")
            info["speedups"] = getattr(codec, "SPEEDUPS", None)
    out[name] = info
print(json.dumps(out))
"""


def probe_modules(names: list[str]) -> dict[str, dict[str, Any]]:
    """Imports each module once in a child process (this process imports none of them)."""
    proc = subprocess.run(
        [PY, "-c", PROBE, *names], capture_output=True, text=True, timeout=60, check=False
    )
    try:
        found: dict[str, dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        why = (proc.stderr or proc.stdout).strip()[-300:]
        return {name: {"error": f"probe failed: {why}"} for name in names}
    return found


def unavailable(client: str, modules: dict[str, dict[str, Any]]) -> str | None:
    lib, _, loop = client.partition("@")
    needed = [MODULE[lib]] + (["uvloop"] if loop == "uvloop" else [])
    errors = [
        f"cannot import {m} ({modules[m]['error']})" for m in needed if "error" in modules[m]
    ]
    return "; ".join(errors) or None


def git_revision() -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", REPO, "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return None
    return proc.stdout.strip() or None


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cores": sorted(os.sched_getaffinity(0)),
        "python": sys.version,
        "python_implementation": platform.python_implementation(),
        "executable": PY,
    }


# The server process.


class Server:
    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu
        # stderr to a file: a pipe nobody reads could fill up and stall the server.
        self.log: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in stop())
        cmd = [PY, os.path.join(HERE, "server.py")]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"the server did not start: {line!r} {tail}")
        self.port = int(line.split()[1])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """CPU time used so far by all the server's threads (the scheduler's ns counters)."""
        total = 0
        try:
            for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
                with open(f"/proc/{self.proc.pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
        except OSError:
            pass
        return total / 1e9

    def log_tail(self) -> str:
        self.log.seek(0)
        return self.log.read()[-1000:]

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# One measurement.


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat; steal time left out)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    idle, iowait, steal = ticks[3], ticks[4], ticks[7] if len(ticks) > 7 else 0
    return (sum(ticks) - idle - iowait - steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """This process and its waited-for children (the finished clients)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(
    client: str, name: str, server: Server, args: argparse.Namespace, cpu: int | None
) -> dict[str, Any]:
    scen = SCENARIOS[name]
    n, warm = (scen.quick_n, scen.quick_warm) if args.quick else (scen.n, scen.warm)
    cmd = [PY, os.path.join(HERE, "client.py"), "--client", client, "--scenario", scen.letter]
    cmd += ["--port", str(server.port), "--n", str(n), "--size", str(scen.size)]
    cmd += ["--warm", str(warm), "--cap", str(args.cap), "--timeout", str(args.timeout)]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    env = dict(os.environ, **CLIENT_ENV.get(client.partition("@")[0], {}))
    record: dict[str, Any] = {"client": client, "scenario": name}
    cpu0 = server.cpu_seconds()
    busy0, own0 = machine_busy_seconds(), own_cpu_seconds()
    t0 = time.monotonic()
    try:
        # The client stops itself at --timeout; the extra seconds are for a stuck process.
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=args.timeout + 10, check=False
        )
    except subprocess.TimeoutExpired:
        record["error"] = f"killed after {args.timeout + 10:.0f} s"
        return record
    record["wall_s"] = time.monotonic() - t0
    record["server_cpu_s"] = server.cpu_seconds() - cpu0
    # What the rest of the machine used meanwhile, in cores: a noise witness. Approximate
    # (10 ms ticks; loopback work done in softirq threads is counted as "other").
    other = machine_busy_seconds() - busy0 - (own_cpu_seconds() - own0) - record["server_cpu_s"]
    record["other_cores"] = max(0.0, other) / record["wall_s"]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        why = (proc.stderr or proc.stdout).strip()[-500:]
        record["error"] = f"exit {proc.returncode}, no result: {why}"
        return record
    reported = json.loads(lines[-1])
    reported.pop("scenario", None)  # the letter; the record keeps the scenario's name
    record.update(reported)
    if "error" not in record and "elapsed_s" in record:
        # Upper bound of how busy the server was: its CPU time includes the warm-up.
        record["server_load"] = record["server_cpu_s"] / record["elapsed_s"]
    return record


# Summaries.


def spread(values: list[float]) -> float | None:
    """(max - min) / median over the repetitions: a plain noise figure."""
    if len(values) < 2:
        return None
    mid = statistics.median(values)
    return (max(values) - min(values)) / mid if mid else None


def ratio_pairs(clients: list[str]) -> list[tuple[str, str]]:
    """(wsapi client, other client) on the same event loop; plus wsapi-pure, wsapi-stream
    and wsapi-connect ÷ wsapi."""
    pairs = []
    for mine in clients:
        lib, _, loop = mine.partition("@")
        if lib not in WSAPI_LIBS:
            continue
        for other in clients:
            other_lib, _, other_loop = other.partition("@")
            if other_loop == loop and other_lib not in WSAPI_LIBS:
                pairs.append((mine, other))
        if lib != "wsapi" and f"wsapi@{loop}" in clients:
            pairs.append((mine, f"wsapi@{loop}"))
    return pairs


def summarize(
    records: list[dict[str, Any]], clients: list[str], scenarios: list[str]
) -> dict[str, Any]:
    by_rep: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for r in records:
        if "error" not in r:
            by_rep.setdefault((r["scenario"], r["client"]), {})[r["rep"]] = r
    cells: dict[str, dict[str, Any]] = {}
    for name in scenarios:
        for client in clients:
            got = by_rep.get((name, client), {})
            values = [r["value"] for r in got.values()]
            loads = [r["server_load"] for r in got.values() if "server_load" in r]
            cells[f"{name} {client}"] = {
                "scenario": name,
                "client": client,
                "median": statistics.median(values) if values else None,
                "spread": spread(values),
                "reps": len(values),
                "capped": any(r.get("capped") for r in got.values()),
                "server_load_max": max(loads) if loads else None,
            }
    ratios = []
    for mine, other in ratio_pairs(clients):
        for name in scenarios:
            a, b = by_rep.get((name, mine), {}), by_rep.get((name, other), {})
            per_rep = [
                a[rep]["value"] / b[rep]["value"]
                for rep in sorted(a)
                if rep in b and b[rep]["value"]
            ]
            ratios.append(
                {
                    "scenario": name,
                    "client": mine,
                    "reference": other,
                    "median": statistics.median(per_rep) if per_rep else None,
                    "min": min(per_rep) if per_rep else None,
                    "max": max(per_rep) if per_rep else None,
                    "spread": spread(per_rep),
                    "pairs": len(per_rep),
                    "per_rep": per_rep,
                }
            )
    return {"cells": cells, "ratios": ratios}


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "GB/s":
        return f"{value:.2f}"
    if unit == "KiB/conn":
        return f"{value:.1f}"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e4:
        return f"{value / 1e3:.0f} k"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def fmt_pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report(
    summary: dict[str, Any],
    clients: list[str],
    scenarios: list[str],
    failures: dict[tuple[str, str], int],
) -> str:
    cells = summary["cells"]
    head = [f"{name} ({SCENARIOS[name].unit})" for name in scenarios]
    out = ["### Medians over the repetitions", ""]
    rows = []
    for client in clients:
        row = [client]
        for name in scenarios:
            cell = cells[f"{name} {client}"]
            text = fmt_value(cell["median"], SCENARIOS[name].unit)
            text += "*" if cell["capped"] else ""
            text += " !" if failures.get((name, client)) else ""
            row.append(text)
        rows.append(row)
    out += [table(["client", *head], rows), ""]
    out += [
        "Higher is better except E (memory). `*` at least one repetition hit the time cap "
        "(rate over what it got); `!` at least one repetition failed (see the notes); "
        "`—` not measured.",
        "",
        "### Noise: (max - min) / median over the repetitions",
        "",
    ]
    rows = [
        [client] + [fmt_pct(cells[f"{name} {client}"]["spread"]) for name in scenarios]
        for client in clients
    ]
    out += [table(["client", *scenarios], rows), ""]
    out += ["### Server CPU ÷ measured time (upper bound, worst repetition)", ""]
    rows = [
        [client] + [fmt_pct(cells[f"{name} {client}"]["server_load_max"]) for name in scenarios]
        for client in clients
    ]
    out += [table(["client", *scenarios], rows), ""]
    out += [
        "Near 100% would mean the server, not the client, limited that measurement.",
        "",
        "### Paired ratios: wsapi ÷ other client on the same event loop",
        "",
    ]
    rows = []
    for r in summary["ratios"]:
        scen = SCENARIOS[r["scenario"]]
        ratio = "—" if r["median"] is None else f"{r['median']:.2f}x"
        spread_ = "—" if r["min"] is None else f"{r['min']:.2f}-{r['max']:.2f}"
        better = "faster" if scen.higher_is_better else "less memory"
        verdict = "—"
        if r["median"] is not None:
            wins = r["median"] > 1 if scen.higher_is_better else r["median"] < 1
            winner = r["client"] if wins else r["reference"]
            verdict = f"{winner.partition('@')[0]} {better}"
            if f"{r['median']:.2f}" == "1.00":
                verdict = "equal"
            elif r["pairs"] > 1 and r["min"] <= 1 <= r["max"]:
                verdict = "mixed: pairs on both sides of 1"
        rows.append(
            [
                f"{r['client']} ÷ {r['reference']}",
                r["scenario"],
                ratio,
                spread_,
                fmt_pct(r["spread"]),
                str(r["pairs"]),
                verdict,
            ]
        )
    out += [table(["pair", "scenario", "ratio", "min-max", "spread", "pairs", "reading"], rows)]
    out += [
        "",
        "ratio: the median over repetitions of (wsapi's value ÷ the other's value in the same "
        "repetition). Above 1.00 wsapi is faster in A-D; in E (KiB per connection) above 1.00 "
        "means wsapi uses more memory. spread: (max - min) / median of those ratios.",
    ]
    return "\n".join(out)


def plot(results_path: str, image_path: str) -> None:
    """Draw a results JSON's paired ratios as a bar chart: a group per scenario, a bar per
    (wsapi client ÷ other client) pair at its median, the min-max over the pairs as a line."""
    import matplotlib  # noqa: PLC0415 (the bench extra; only --plot needs it)
    import matplotlib.ticker  # noqa: PLC0415

    matplotlib.use("Agg")  # a file, no display
    import matplotlib.pyplot as plt  # noqa: PLC0415

    with open(results_path) as f:
        results = json.load(f)
    ratios = [r for r in results["summary"]["ratios"] if r["median"] is not None]
    scenarios = [
        name for name in results["scenarios"] if any(r["scenario"] == name for r in ratios)
    ]
    pairs = sorted({(r["client"], r["reference"]) for r in ratios}, key=lambda p: (p[1], p[0]))
    width = 0.8 / max(len(pairs), 1)
    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=100)
    for i, (mine, other) in enumerate(pairs):
        xs, medians, low, high = [], [], [], []
        for j, name in enumerate(scenarios):
            for r in ratios:
                if (r["scenario"], r["client"], r["reference"]) == (name, mine, other):
                    xs.append(j - 0.4 + width * (i + 0.5))
                    medians.append(r["median"])
                    low.append(r["median"] - r["min"])
                    high.append(r["max"] - r["median"])
        ax.bar(xs, medians, width, yerr=[low, high], capsize=2, label=f"{mine} ÷ {other}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(scenarios)))
    labels = [f"{name}\n" + textwrap.fill(SCENARIOS[name].what, 22) for name in scenarios]
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_yscale("log")  # a ratio and its inverse sit at the same distance from 1
    ax.set_yticks([0.1, 0.2, 0.5, 1, 2, 5, 10, 20])
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("wsapi ÷ other, paired median (min-max)")
    ax.set_title("Above 1: wsapi faster (A-D); E, memory per connection: below 1, wsapi uses less")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(image_path)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(
        description="Benchmark wsapi against other Python WebSocket clients (bench/README.md)."
    )
    p.add_argument("--reps", type=int, default=None, help=f"repetitions [{DEFAULT_REPS}; 1 quick]")
    p.add_argument("--quick", action="store_true", help="tiny sizes, short cap: a smoke test")
    p.add_argument("--clients", nargs="+", help=f"LIB@LOOP names [{','.join(DEFAULT_CLIENTS)}]")
    p.add_argument("--scenarios", nargs="+", help=f"[{','.join(SCENARIOS)}]")
    p.add_argument("--out", help="results JSON [bench/results-<UTC time>.json]")
    p.add_argument("--seed", type=int, default=1, help="seed of the per-repetition order [1]")
    p.add_argument("--cap", type=float, default=None, help="seconds a measurement may take [2]")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a client fails")
    p.add_argument("--same-core", action="store_true", help="pin the server to the client's core")
    p.add_argument(
        "--plot",
        nargs=2,
        metavar=("RESULTS", "IMAGE"),
        help="draw the ratios of a results JSON into IMAGE (.png, .svg), and measure nothing",
    )
    args = p.parse_args()
    if args.plot:
        plot(*args.plot)
        return
    if args.reps is None:
        args.reps = 1 if args.quick else DEFAULT_REPS
    if args.cap is None:
        args.cap = QUICK_CAP if args.quick else DEFAULT_CAP
    clients = split_names(args.clients, DEFAULT_CLIENTS)
    scenarios = split_names(args.scenarios, list(SCENARIOS))
    for client in clients:
        lib, _, loop = client.partition("@")
        if lib not in LIBS or loop not in LOOPS:
            p.error(f"unknown client {client!r}: LIB@LOOP, LIB in {LIBS}, LOOP in {LOOPS}")
    for name in scenarios:
        if name not in SCENARIOS:
            p.error(f"unknown scenario {name!r}: one of {', '.join(SCENARIOS)}")

    started = datetime.datetime.now(datetime.timezone.utc)
    modules = probe_modules(["wsapi", "websockets", "websocket", "picows", "uvloop", "aiofastnet"])
    skipped = {c: why for c in clients if (why := unavailable(c, modules))}
    for client, why in skipped.items():
        print(f"skipping {client}: {why}", file=sys.stderr)
    runnable = [c for c in clients if c not in skipped]
    if not runnable:
        sys.exit("nothing to measure: no client's library imports in this interpreter")

    # Two cores: client on the first, server on the second, so each has a core of its own.
    cores = sorted(os.sched_getaffinity(0))
    client_cpu = cores[0] if len(cores) >= 2 else None
    server_cpu = client_cpu if args.same_core else (cores[1] if len(cores) >= 2 else None)

    records: list[dict[str, Any]] = []
    notes: list[str] = []
    rng = random.Random(args.seed)
    total = args.reps * sum(measures(c, name) for name in scenarios for c in runnable)
    server = Server(server_cpu)
    try:
        for rep in range(1, args.reps + 1):
            for name in scenarios:
                order = list(runnable)
                rng.shuffle(order)
                for client in order:
                    if not measures(client, name):
                        continue
                    if not server.alive():
                        notes.append(f"the server died before rep {rep} {name} {client}")
                        notes.append(server.log_tail())
                        server.stop()
                        server = Server(server_cpu)
                    r = measure(client, name, server, args, client_cpu)
                    r["rep"] = rep
                    records.append(r)
                    unit = SCENARIOS[name].unit
                    shown = r.get("error") or f"{fmt_value(r['value'], unit)} {unit}"
                    mark = "*" if r.get("capped") else ""
                    print(
                        f"[{len(records)}/{total}] rep {rep} {name:4} {client:20} {shown}{mark}",
                        file=sys.stderr,
                        flush=True,
                    )
    except KeyboardInterrupt:
        notes.append("interrupted: the tables hold what was measured until then")
    finally:
        if server.log_tail().strip():
            notes.append("the server wrote to stderr (last 1000 chars): " + server.log_tail())
        server.stop()
    elapsed = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()

    summary = summarize(records, runnable, scenarios)
    failures: dict[tuple[str, str], int] = {}
    for r in records:
        if "error" in r:
            failures[(r["scenario"], r["client"])] = (
                failures.get((r["scenario"], r["client"]), 0) + 1
            )
            notes.append(f"failed: rep {r['rep']} {r['scenario']} {r['client']}: {r['error']}")
    others = sorted(r["other_cores"] for r in records if "other_cores" in r)
    if others:
        notes.append(
            f"other processes used {statistics.median(others):.2f} cores in the median "
            f"measurement, {others[-1]:.2f} at most (per measurement: other_cores in the JSON)"
        )
    wsapi_info = modules.get("wsapi", {})
    speedups = sorted(
        {f"{r['client']}: {r['wsapi_speedups']}" for r in records if "wsapi_speedups" in r}
    )
    versions = {m: info.get("version") for m, info in modules.items() if "error" not in info}

    print(f"## wsapi benchmark, {started:%Y-%m-%d %H:%M} UTC")
    print()
    print(
        f"{args.reps} repetition(s){' (quick sizes)' if args.quick else ''}, cap {args.cap:g} s, "
        f"seed {args.seed}, {elapsed:.0f} s. Python {platform.python_version()}; "
        + (", ".join(f"{m} {v}" for m, v in versions.items()) or "no client library")
        + f"; repository {git_revision()}."
    )
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; client on core {client_cpu}, "
        f"server on core {server_cpu}. wsapi compiled speedups: "
        + (", ".join(speedups) or str(wsapi_info.get("speedups")))
        + "."
    )
    print()
    print(report(summary, runnable, scenarios, failures))
    if skipped or notes:
        print()
        print("### Notes")
        print()
        for client, why in skipped.items():
            print(f"- skipped {client}: {why}")
        for note in notes:
            print(f"- {note.strip()}")

    out = args.out or os.path.join(HERE, f"results-{started:%Y%m%d-%H%M%S}.json")
    results = {
        "started": started.isoformat(),
        "elapsed_s": elapsed,
        "argv": sys.argv[1:],
        "settings": {
            "reps": args.reps,
            "quick": args.quick,
            "cap_s": args.cap,
            "timeout_s": args.timeout,
            "seed": args.seed,
            "client_cpu": client_cpu,
            "server_cpu": server_cpu,
        },
        "scenarios": {name: asdict(SCENARIOS[name]) for name in scenarios},
        "clients": clients,
        "skipped": skipped,
        "versions": versions,
        "modules": modules,
        "wsapi_speedups": wsapi_info.get("speedups"),
        "repository": git_revision(),
        "machine": machine(),
        "measurements": records,
        "summary": {"cells": list(summary["cells"].values()), "ratios": summary["ratios"]},
        "notes": notes,
    }
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    print()
    print(f"All measurements: {out if args.out else os.path.relpath(out)}")
    if failures:
        sys.exit(1)  # a failed measurement is reported above, and is an error for scripts


if __name__ == "__main__":
    main()
