from collections.abc import Callable

from .websocket import WebSocket

class MessageDelivery:
    def __init__(self, target: WebSocket, on_message: Callable[[str | bytes], None]) -> None: ...
    def __call__(self, data: str | bytes) -> None: ...
