"""What a model is shown of a MIME bundle (a display, or a cell's value): one rule for every face.

A bundle holds one value in several representations (``text/plain``, ``image/png``, ``text/html``, ...).
A model reads one of them: the image if there is one (its ``text/plain`` is then only a repr like
``<Figure size 640x480 with 1 Axes>``), else the first text form. MCP's tool results and the provider
integrations' tool outputs both show bundles by this rule. (The E2B face is a protocol, not a reader:
it passes every representation on under E2B's names, ``e2b/results.py``.)
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
"""Image types shown as images (the ones models can look at), in order of preference."""
TEXT_TYPES = ("text/plain", "text/markdown", "application/json")
"""Text forms, in order of preference."""


@dataclass(frozen=True)
class Shown:
    """The representation chosen: an image (``value`` its base64, without whitespace) or a text."""

    mime: str
    value: str

    @property
    def is_image(self) -> bool:
        return self.mime in IMAGE_TYPES


def what_to_show(data: dict[str, Any]) -> Shown | None:
    """The representation of ``data`` a model should see; None for an empty bundle.

    An image whose data is not valid base64 is passed over (the next choice is shown). A bundle with
    neither an image nor a text form is shown as a note naming its types.
    """
    for mime in IMAGE_TYPES:
        if mime in data:
            encoded = "".join(joined(data[mime]).split())
            if _is_base64(encoded):
                return Shown(mime, encoded)
    for mime in TEXT_TYPES:
        if mime in data:
            value = data[mime]
            return Shown(mime, json.dumps(value) if mime == "application/json" and not isinstance(value, str)
                         else joined(value))
    if not data:
        return None
    return Shown("text/plain", f"[a display of type {', '.join(sorted(data))}, which has no text form]")


def joined(value: Any) -> str:
    """A representation as one string (nbformat allows a multiline string as a list of lines)."""
    return "".join(str(part) for part in value) if isinstance(value, list) else str(value)


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return bool(value)
