"""The code a request sends: checked once, before any sandbox is touched."""

from __future__ import annotations

from .._errors import InvalidRequestError, TooLargeError

MAX_CODE_BYTES = 1 << 20


def check_code(code: str) -> None:
    """Refuse what is not text, not valid Unicode, or over ``MAX_CODE_BYTES``."""
    if not isinstance(code, str):
        raise TypeError("code must be a string")
    try:
        size = len(code.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRequestError("code must be valid Unicode text (it holds a lone surrogate)") from None
    if size > MAX_CODE_BYTES:
        raise TooLargeError(f"code is over the limit of {MAX_CODE_BYTES} bytes")
