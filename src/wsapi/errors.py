"""``DOMException``: the exception the web platform's APIs throw, as Web IDL defines it.

The WebSocket API raises it for API misuse with the name the specification gives
(``"SyntaxError"``, ``"InvalidStateError"``, ``"InvalidAccessError"``, ``"SecurityError"``),
so code written against the JavaScript API can test ``exc.name`` or the legacy ``exc.code``
unchanged. Python-level misuse (a missing argument, a wrong type) stays a ``TypeError``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DOMException"]

# Web IDL 2.8.1 "DOMException names": the names that have a legacy code. Every other name
# (including the default "Error" and newer names such as "NotAllowedError") has code 0.
_LEGACY_CODES: Final[dict[str, int]] = {
    "IndexSizeError": 1,
    "HierarchyRequestError": 3,
    "WrongDocumentError": 4,
    "InvalidCharacterError": 5,
    "NoModificationAllowedError": 7,
    "NotFoundError": 8,
    "NotSupportedError": 9,
    "InvalidStateError": 11,
    "SyntaxError": 12,
    "InvalidModificationError": 13,
    "NamespaceError": 14,
    "InvalidAccessError": 15,
    "TypeMismatchError": 17,
    "SecurityError": 18,
    "NetworkError": 19,
    "AbortError": 20,
    "URLMismatchError": 21,
    "QuotaExceededError": 22,
    "TimeoutError": 23,
    "InvalidNodeTypeError": 24,
    "DataCloneError": 25,
}


class DOMException(Exception):
    """An exception named by a web specification: ``DOMException(message="", name="Error")``.

    Like the Web IDL interface, ``name``, ``message`` and ``code`` are read-only, ``code`` is
    the legacy code of the name (0 for names without one), and the legacy code constants
    (``SYNTAX_ERR``, ``INVALID_STATE_ERR``, ...) are attributes of the class and of every
    instance. ``str()`` gives ``"SyntaxError: message"``, the form a browser console shows.
    """

    # BaseException instances always carry a __dict__ (for __notes__ and the like), so the
    # slots only make the two fields fixed-layout; they are private so that the public
    # names can be read-only properties, as the IDL attributes are.
    __slots__ = ("_message", "_name")

    # The legacy codes, Web IDL "interface DOMException" constants. Codes 2, 6, 10 and 16
    # have no name that maps to them any more, but the constants stay in the interface.
    INDEX_SIZE_ERR: Final = 1
    DOMSTRING_SIZE_ERR: Final = 2
    HIERARCHY_REQUEST_ERR: Final = 3
    WRONG_DOCUMENT_ERR: Final = 4
    INVALID_CHARACTER_ERR: Final = 5
    NO_DATA_ALLOWED_ERR: Final = 6
    NO_MODIFICATION_ALLOWED_ERR: Final = 7
    NOT_FOUND_ERR: Final = 8
    NOT_SUPPORTED_ERR: Final = 9
    INUSE_ATTRIBUTE_ERR: Final = 10
    INVALID_STATE_ERR: Final = 11
    SYNTAX_ERR: Final = 12
    INVALID_MODIFICATION_ERR: Final = 13
    NAMESPACE_ERR: Final = 14
    INVALID_ACCESS_ERR: Final = 15
    VALIDATION_ERR: Final = 16
    TYPE_MISMATCH_ERR: Final = 17
    SECURITY_ERR: Final = 18
    NETWORK_ERR: Final = 19
    ABORT_ERR: Final = 20
    URL_MISMATCH_ERR: Final = 21
    QUOTA_EXCEEDED_ERR: Final = 22
    TIMEOUT_ERR: Final = 23
    INVALID_NODE_TYPE_ERR: Final = 24
    DATA_CLONE_ERR: Final = 25

    def __init__(self, message: str = "", name: str = "Error") -> None:
        # Web IDL converts both arguments to DOMString; in Python a non-str is a mistake
        # (DESIGN.md: wrong types raise TypeError) rather than something to stringify.
        if not isinstance(message, str):
            raise TypeError(f"DOMException message must be str, not {type(message).__name__}")
        if not isinstance(name, str):
            raise TypeError(f"DOMException name must be str, not {type(name).__name__}")
        super().__init__(message)
        self._message = message
        self._name = name

    @property
    def name(self) -> str:
        """The error name, e.g. ``"SyntaxError"``."""
        return self._name

    @property
    def message(self) -> str:
        """The human-readable message given to the constructor."""
        return self._message

    @property
    def code(self) -> int:
        """The legacy numeric code of ``name`` (``SYNTAX_ERR`` is 12), or 0 if it has none."""
        return _LEGACY_CODES.get(self._name, 0)

    def __str__(self) -> str:
        return f"{self._name}: {self._message}" if self._message else self._name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._message!r}, {self._name!r})"

    def __reduce__(self) -> tuple[type[DOMException], tuple[str, str], dict[str, object] | None]:
        # The default reduction rebuilds from self.args, which holds only the message; the
        # name must travel too. The instance dict carries notes and other extra attributes.
        return (type(self), (self._message, self._name), self.__dict__ or None)
