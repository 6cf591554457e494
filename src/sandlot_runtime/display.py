"""Rich output: turn Python objects into Jupyter MIME bundles.

Follows IPython's display protocol: ``_repr_mimebundle_`` first, then the
single-type ``_repr_*_`` methods, and ``text/plain`` from ``repr`` always.
Matplotlib figures are rendered to PNG the way the inline backend does. Only
the standard library is imported; matplotlib is used only if the user's code
(or the zygote's preload) already imported it.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from collections.abc import Callable
from typing import Any

Output = dict[str, Any]

# MIME type -> the IPython display method that produces it.
REPR_METHODS = {
    "text/html": "_repr_html_",
    "text/markdown": "_repr_markdown_",
    "image/svg+xml": "_repr_svg_",
    "image/png": "_repr_png_",
    "image/jpeg": "_repr_jpeg_",
    "text/latex": "_repr_latex_",
    "application/json": "_repr_json_",
    "application/javascript": "_repr_javascript_",
}
BINARY_TYPES = {"image/png", "image/jpeg"}


def mime_bundle(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (data, metadata) MIME bundle for ``obj``; ``text/plain`` is always present."""
    data: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    figure = as_matplotlib_figure(obj)
    if figure is not None:
        data["image/png"] = render_figure_png(figure)
    elif not isinstance(obj, type):  # classes have the methods unbound; IPython skips them too
        method = _display_method(obj, "_repr_mimebundle_")
        if method is not None:
            result = _call_quietly(method, include=None, exclude=None)
            if isinstance(result, tuple) and len(result) == 2:
                result, extra = result
                if isinstance(extra, dict):
                    metadata.update(extra)
            if isinstance(result, dict):
                data.update({str(k): v for k, v in result.items()})
        for mime, name in REPR_METHODS.items():
            if mime in data:
                continue
            method = _display_method(obj, name)
            value = _call_quietly(method) if method is not None else None
            if isinstance(value, tuple) and len(value) == 2:
                value, extra = value
                if isinstance(extra, dict):
                    metadata[mime] = extra
            if value is None:
                continue
            if mime in BINARY_TYPES and isinstance(value, (bytes, bytearray)):
                value = base64.b64encode(value).decode()
            data[mime] = value
    if "text/plain" not in data:
        data["text/plain"] = safe_repr(obj)
    return _json_safe(data), _json_safe(metadata)


def safe_repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception as exc:  # a broken __repr__ is the user's bug, not ours
        return f"<{type(obj).__name__} object; repr() raised {type(exc).__name__}>"


def render_figure_png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def open_figures() -> list[Any]:
    """Open pyplot figures, if pyplot is loaded at all."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    return [pyplot.figure(num) for num in pyplot.get_fignums()]


def close_figures(figures: list[Any]) -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        for figure in figures:
            pyplot.close(figure)


def figure_output(figure: Any) -> Output:
    return {
        "output_type": "display_data",
        "data": {"image/png": render_figure_png(figure), "text/plain": safe_repr(figure)},
        "metadata": {},
    }


def as_matplotlib_figure(obj: Any) -> Any:
    figure_module = sys.modules.get("matplotlib.figure")
    if figure_module is not None and isinstance(obj, figure_module.Figure):
        return obj
    return None


def _display_method(obj: Any, name: str) -> Callable[..., Any] | None:
    try:
        method = getattr(obj, name, None)
    except Exception:
        return None
    return method if callable(method) else None


def _call_quietly(method: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return method(**kwargs)
    except Exception:
        return None  # as IPython does, a failing formatter only loses that format


def _json_safe(value: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return {str(k): v if isinstance(v, str) else safe_repr(v) for k, v in value.items()}
