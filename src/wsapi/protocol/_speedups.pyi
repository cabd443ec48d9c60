from collections.abc import Callable

from .engine import ClientConnection

def apply_mask(data: bytes | bytearray | memoryview, key: bytes) -> bytes: ...
def encode_masked_frame(first_byte: int, data: bytes | bytearray | memoryview) -> bytes: ...
def deliver_messages(
    engine: ClientConnection,
    on_message: Callable[[str | bytes], object],
    report_error: Callable[[Exception], object],
    limit: int,
    data: bytes | bytearray | memoryview | None = None,
) -> int: ...
def waits_for_more(engine: ClientConnection) -> bool: ...
