"""The WebSocket interface against real peers, a module per part of the specification: the
CR 2011 API (sections 4 to 6) and the WHATWG living standard where DESIGN.md section 2 says
they differ, with the Python conveniences around it (``opened``, ``closed``, ``async with``,
``failure``, ``drained``, ``ping``). The helpers they share live in ``support``."""
