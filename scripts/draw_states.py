"""Draws the engine's state machine from its own table of states and transitions (the
"States and transitions" lines of ``wsapi/protocol/engine.py``'s docstring) into
docs/engine-states.png, for docs/architecture.md:

    .venv/bin/pip install -e '.[bench]'   # matplotlib
    .venv/bin/python scripts/draw_states.py

The table is read from the source file, not from the imported module, so that the picture is
the same in both builds. ``any`` stands for every state but the target.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "src" / "wsapi" / "protocol" / "engine.py"
IMAGE = ROOT / "docs" / "engine-states.png"
STATES = ("CONNECTING", "OPEN", "CLOSING", "CLOSED")
"""The ``State`` enum's members, in the order they come."""
POSITION = {
    "CONNECTING": (0.0, 1.0),
    "OPEN": (1.0, 1.0),
    "CLOSING": (2.0, 1.0),
    "CLOSED": (1.0, 0.0),
}
TRANSITION = re.compile(r"^\s+(\w+) --(.+?)--> (\w+)(?: \((.*)\))?\s*$")


def transitions(source: str) -> list[tuple[str, str, str]]:
    """(from, label, to) for each line of the docstring's table, ``any`` expanded."""
    doc = ast.get_docstring(ast.parse(source)) or ""
    table = doc.split("States and transitions", 1)[1].split("\n\n", 2)[1]
    found = []
    for line in table.splitlines():
        match = TRANSITION.match(line)
        if match is None:
            raise ValueError(f"not a transition: {line!r}")
        start, label, end = match.group(1), match.group(2), match.group(3)
        for state in STATES if start == "any" else (start,):
            if state != end or start != "any":
                found.append((state, label, end))
    return found


def draw(edges: list[tuple[str, str, str]], image: Path) -> None:
    import matplotlib  # noqa: PLC0415 (the bench extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=100)
    for state, (x, y) in POSITION.items():
        ax.text(
            x,
            y,
            state,
            ha="center",
            va="center",
            fontsize=11,
            weight="bold",
            bbox={"boxstyle": "round,pad=0.5", "facecolor": "#e8eef7", "edgecolor": "#345"},
        )
    seen: dict[tuple[str, str], int] = {}
    for start, label, end in edges:
        n = seen[(start, end)] = seen.get((start, end), -1) + 1
        (x0, y0), (x1, y1) = POSITION[start], POSITION[end]
        if start == end:  # a loop above the state
            ax.annotate(
                "",
                xy=(x0 + 0.12, y0 + 0.08),
                xytext=(x0 - 0.12, y0 + 0.08),
                arrowprops={"arrowstyle": "->", "connectionstyle": "arc3,rad=-1.6"},
            )
            ax.text(x0, y0 + 0.38, label, ha="center", fontsize=8)
            continue
        rad = (0.2 + 0.2 * (n // 2)) * (1 if n % 2 == 0 else -1)  # edges of a pair alternate sides
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={
                "arrowstyle": "->",
                "shrinkA": 28,
                "shrinkB": 28,
                "connectionstyle": f"arc3,rad={rad}",
            },
        )
        # The label sits near the arc's middle: the chord's midpoint pushed along its normal.
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        dx, dy = x1 - x0, y1 - y0
        ax.text(
            mx + rad * dy * 0.5,
            my - rad * dx * 0.5,
            label,
            ha="center",
            va="center",
            fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
        )
    ax.set_xlim(-0.5, 2.5)
    ax.set_ylim(-0.3, 1.55)
    ax.axis("off")
    ax.set_title("wsapi.protocol.engine: states and transitions (RFC 6455 4.1, 5.5.1, 7.1)")
    fig.tight_layout()
    fig.savefig(image)
    plt.close(fig)


def main() -> None:
    edges = transitions(ENGINE.read_text())
    draw(edges, Path(sys.argv[1]) if len(sys.argv) > 1 else IMAGE)


if __name__ == "__main__":
    main()
