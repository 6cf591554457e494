"""Environment variables from E2B calls (``envVars`` at create, a process's ``envs``), held to sandlot's own rule.

The rule is the one sandlot's API applies (``server.schemas.Env``): names non-empty, without ``=`` or NUL; values
without NUL; no lone surrogates. What the interpreter's ``os.environ`` or ``execve`` would refuse is a 400 here,
not a broken sandbox later.
"""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from .._errors import InvalidRequestError
from ..server.schemas import Env

_ENV: TypeAdapter[dict[str, str]] = TypeAdapter(Env)


def checked_env(value: dict[str, str], name: str) -> dict[str, str]:
    """``value`` if sandlot would take it as an environment; 400 naming ``name`` otherwise."""
    try:
        return _ENV.validate_python(value, strict=True)
    except ValidationError as exc:
        reason = exc.errors()[0].get("msg", "is not valid")
        raise InvalidRequestError(f"'{name}' is not a valid environment: {reason}") from None
