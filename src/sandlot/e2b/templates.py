"""Template names: E2B's ``templateID`` maps to what sandlot runs a sandbox with.

sandlot has one environment (the server's Python with its preloads); every E2B template the SDKs ask for by
default (``base``, ``code-interpreter-v1``) names it. Any other name is refused, so code that needs a template
sandlot cannot give fails at ``Sandbox.create()`` rather than later, on a missing program.
"""

from __future__ import annotations

from .._errors import InvalidRequestError

DEFAULT_TEMPLATE = "code-interpreter-v1"
KNOWN_TEMPLATES = frozenset({"base", "code-interpreter-v1", "code-interpreter", "default", "sandlot"})


def resolve(template: str | None) -> str:
    """The template name to report for a request's ``templateID`` (400 for one sandlot cannot serve)."""
    name = template or DEFAULT_TEMPLATE
    if name not in KNOWN_TEMPLATES:
        raise InvalidRequestError(f"template {name!r} is not available: this server serves "
                                  f"{', '.join(sorted(KNOWN_TEMPLATES))} (sandlot's default environment); "
                                  "custom templates are not supported (docs/e2b.md)")
    return name
