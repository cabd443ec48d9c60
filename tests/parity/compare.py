"""Comparing two logs, with the known differences declared as edits.

A log is ``{"client": [entries], "server": [entries]}``: what the page script saw, and what the
peer received. A declared ``Difference`` is a list of edits that turn wsapi's log into
Chromium's (``Drop``, ``Change``, ``Insert``, ``Replace``), or that take what may differ by
timing out of both logs (``Omit`` a field, ``Ignore`` entries). The check is strict both ways:
wsapi's log with every declared edit applied must equal Chromium's, and a ``required``
difference must really be there (without its edits the logs would not match): a difference
that went away is reported, so that its declaration is removed rather than left to hide a
regression.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Entry = dict[str, Any]
Log = dict[str, list[Entry]]
Side = Literal["client", "server"]


def _matches(entry: Entry, where: Mapping[str, Any]) -> bool:
    return all(key in entry and entry[key] == value for key, value in where.items())


def _fill(value: Any, host: str) -> Any:
    """A declared value with ``{host}`` (the peer's 127.0.0.1:PORT) filled in."""
    if isinstance(value, str):
        return value.replace("{host}", host)
    if isinstance(value, Mapping):
        return {key: _fill(item, host) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, host) for item in value]
    return value


@dataclass(frozen=True)
class Drop:
    """Chromium has no such entries: remove those matching ``where`` from wsapi's log."""

    side: Side
    where: Mapping[str, Any]

    def apply(self, log: Log, host: str) -> None:
        log[self.side] = [entry for entry in log[self.side] if not _matches(entry, self.where)]


@dataclass(frozen=True)
class Change:
    """Chromium's entries matching ``where`` have ``values`` instead of wsapi's."""

    side: Side
    where: Mapping[str, Any]
    values: Mapping[str, Any]

    def apply(self, log: Log, host: str) -> None:
        for entry in log[self.side]:
            if _matches(entry, self.where):
                entry.update(_fill(self.values, host))


@dataclass(frozen=True)
class Insert:
    """Chromium has ``entries`` before the first entry matching ``before``."""

    side: Side
    before: Mapping[str, Any]
    entries: tuple[Mapping[str, Any], ...]

    def apply(self, log: Log, host: str) -> None:
        entries = log[self.side]
        for index, entry in enumerate(entries):
            if _matches(entry, self.before):
                entries[index:index] = [_fill(new, host) for new in self.entries]
                return


@dataclass(frozen=True)
class Replace:
    """Chromium has ``entries`` where wsapi has the entries matching ``where``."""

    side: Side
    where: Mapping[str, Any]
    entries: tuple[Mapping[str, Any], ...]

    def apply(self, log: Log, host: str) -> None:
        replaced: list[Entry] = []
        for entry in log[self.side]:
            if _matches(entry, self.where):
                replaced.extend(_fill(new, host) for new in self.entries)
            else:
                replaced.append(entry)
        log[self.side] = replaced


@dataclass(frozen=True)
class Omit:
    """A field left out of every entry on ``side`` (only those matching ``where`` when
    given), in both logs, after the other edits: for values that may differ."""

    side: Side
    name: str
    where: Mapping[str, Any] = field(default_factory=dict)

    def apply(self, log: Log, host: str) -> None:
        for entry in log[self.side]:
            if _matches(entry, self.where):
                entry.pop(self.name, None)


@dataclass(frozen=True)
class Ignore:
    """Entries matching ``where`` on ``side`` are left out of both logs, after the other
    edits: for what may or may not happen, depending on timing."""

    side: Side
    where: Mapping[str, Any] = field(default_factory=dict)

    def apply(self, log: Log, host: str) -> None:
        log[self.side] = [entry for entry in log[self.side] if not _matches(entry, self.where)]


Edit = Drop | Change | Insert | Replace | Omit | Ignore
_BOTH = (Omit, Ignore)


@dataclass(frozen=True)
class Difference:
    """A known difference between wsapi ("whatwg") and Chromium, with its reason; listed in
    docs/parity.md under its ``id``."""

    id: str
    reason: str
    edits: tuple[Edit, ...]
    required: bool = True
    """False only for work in progress: the difference may or may not show (yet)."""


def normalized(
    wsapi: Log, chromium: Log, differences: Sequence[Difference], host: str
) -> tuple[Log, Log]:
    """wsapi's log with every edit applied, and Chromium's with the omissions applied
    (``Omit`` and ``Ignore`` last, so that they apply to declared entries too)."""
    ours, theirs = copy.deepcopy(wsapi), copy.deepcopy(chromium)
    edits = [edit for difference in differences for edit in difference.edits]
    for edit in edits:
        if not isinstance(edit, _BOTH):
            edit.apply(ours, host)
    for edit in edits:
        if isinstance(edit, _BOTH):
            edit.apply(ours, host)
            edit.apply(theirs, host)
    return ours, theirs


def problems(wsapi: Log, chromium: Log, differences: Sequence[Difference], host: str) -> list[str]:
    """What is wrong: an undeclared difference (as a diff), or a declared one that did not
    occur. Empty when the logs agree as declared."""
    ours, theirs = normalized(wsapi, chromium, differences, host)
    if ours != theirs:
        return [render_diff(ours, theirs)]
    found = []
    for difference in differences:
        if not difference.required:
            continue
        others = [other for other in differences if other is not difference]
        without_ours, without_theirs = normalized(wsapi, chromium, others, host)
        if without_ours == without_theirs:
            found.append(
                f"the declared difference {difference.id!r} did not occur: wsapi and Chromium "
                "agree there now, so remove the declaration (and its entry in docs/parity.md)"
            )
    return found


def lines(log: Log) -> list[str]:
    """One line per entry, side first: what the diff shows."""
    return [
        f"{side:6} {json.dumps(entry, ensure_ascii=False)}"
        for side in ("client", "server")
        for entry in log.get(side, [])
    ]


def render_diff(ours: Log, theirs: Log) -> str:
    diff = difflib.unified_diff(
        lines(ours),
        lines(theirs),
        "wsapi (whatwg), declared differences applied",
        "chromium",
        n=1000,
        lineterm="",
    )
    return "\n".join(diff)
