"""Web IDL's string conversions, for the API's modules (events, blob, websocket).

A Python ``str`` is a sequence of code points and may hold surrogates (U+D800-U+DFFF), which
JavaScript strings hold as UTF-16 code units. Where a JavaScript string would have a high
surrogate followed by a low one, it holds one character: so does the conversion here. Only
an unpaired surrogate is a "lone surrogate", which a ``USVString`` replaces with U+FFFD.
"""

from __future__ import annotations

__all__ = ["paired_utf8", "usv_string", "usv_utf8"]


def usv_string(text: str) -> str:
    """``text`` converted to a Web IDL ``USVString``: surrogate pairs joined into the
    character they encode, lone surrogates replaced by U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _join_surrogates(text, "replace")
    return text


def usv_utf8(text: str) -> bytes:
    """The UTF-8 of ``usv_string(text)``."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _join_surrogates(text, "replace").encode("utf-8")


def paired_utf8(text: str) -> bytes:
    """The UTF-8 of ``text`` with its surrogate pairs joined; ``UnicodeDecodeError`` if it
    has a lone surrogate (where the CR's ``send()`` throws a ``SyntaxError``)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _join_surrogates(text, "strict").encode("utf-8")


def _join_surrogates(text: str, errors: str) -> str:
    # Through the UTF-16 code units a JavaScript string would hold.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", errors)
