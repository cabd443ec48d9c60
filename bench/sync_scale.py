"""Many blocking connections at once (``wsapi.sync``): the threads they take, the time to
open them and the RSS per connection, each connection echoing one message.

    .venv/bin/python bench/server.py &              # prints PORT <n>
    .venv/bin/python bench/sync_scale.py <n> 1000
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time

from wsapi import UserAgent
from wsapi.sync import connect


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def main() -> None:
    port = int(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    url = f"ws://127.0.0.1:{port}/echo"
    agent = UserAgent(proxy=None)
    threads_before = threading.active_count()
    connect(url, agent=agent).close()  # Loads the code and starts the background thread.
    rss_before = rss_kib()
    started = time.perf_counter()
    conns = [connect(url, agent=agent) for _ in range(count)]
    opened = time.perf_counter() - started
    rss_after = rss_kib()
    for n, conn in enumerate(conns):
        conn.send(str(n))
    echoed = all(conn.recv(timeout=10) == str(n) for n, conn in enumerate(conns))
    names = [thread.name for thread in threading.enumerate()]
    print(
        f"{count} connections open, each echoed: {echoed}; threads in the process: "
        f"{threading.active_count()} (before the first connect: {threads_before}; "
        f"wsapi.sync threads: {names.count('wsapi.sync')}); opened in {opened:.2f} s; "
        f"RSS +{(rss_after - rss_before) / count:.1f} KiB per connection"
    )
    for conn in conns:
        conn.close()


if __name__ == "__main__":
    main()
