from collections.abc import Callable

from .protocol.engine import ClientConnection

def deliver_messages(
    engine: ClientConnection,
    on_message: Callable[[str | bytes], object],
    report_error: Callable[[Exception], object],
    limit: int,
    data: bytes | bytearray | memoryview | None = None,
    size: int = -1,
) -> int: ...
