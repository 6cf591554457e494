"""``sandlot.tools`` inside the sandbox: the host's tools, as Python functions.

The host describes its tools (name, parameters, docstring) and this module
builds a stub for each, with the real signature. Calling a stub sends a
``call`` frame over the channel and waits for the host's ``result``: the tool
itself, its credentials and its network access stay on the host. Stubs are
thread-safe, so ``parallel_map`` (or threads of the user's own, or
``await tool.aio(...)``) runs many calls at once.

    from sandlot.tools import get_weather, parallel_map
    temps = parallel_map(get_weather, ["Paris", "Oslo", "Lima"])
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import types
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .kernel import Channel

_KINDS = {"positional_or_keyword": inspect.Parameter.POSITIONAL_OR_KEYWORD,
          "keyword_only": inspect.Parameter.KEYWORD_ONLY}


class ToolError(Exception):
    """A tool call failed on the host: bad arguments, the tool raised, it timed out, or a limit was hit."""


def install(channel: Channel, specs: list[dict[str, Any]]) -> None:
    """(Re)build ``sandlot.tools`` from the host's tool descriptions."""
    module = types.ModuleType("sandlot.tools", __doc__)
    names = []
    withheld = set()
    for spec in specs:
        if spec.get("withheld"):
            withheld.add(str(spec["name"]))
            continue
        stub = _stub(channel, spec)
        setattr(module, stub.__name__, stub)
        names.append(stub.__name__)
    module.__getattr__ = _refuse_withheld(withheld, sorted(names))  # type: ignore[method-assign]
    module.ToolError = ToolError  # type: ignore[attr-defined]
    module.parallel_map = parallel_map  # type: ignore[attr-defined]
    module.__all__ = sorted(names) + ["ToolError", "parallel_map"]  # type: ignore[attr-defined]
    package = types.ModuleType("sandlot", "sandlot, as seen from inside a sandbox: only its tools.")
    package.__path__ = []  # a package, so `import sandlot.tools` works
    package.tools = module  # type: ignore[attr-defined]
    sys.modules["sandlot"] = package
    sys.modules["sandlot.tools"] = module


def _refuse_withheld(withheld: set[str], allowed: list[str]) -> Callable[[str], Any]:
    """The module's ``__getattr__``: a host tool this run may not call is an ImportError that says so
    (``from sandlot.tools import x`` passes it on as it is); any other missing name stays an AttributeError."""
    def __getattr__(name: str) -> Any:
        if name in withheld:
            may = ", ".join(allowed) if allowed else "none"
            raise ImportError(f"the host tool {name!r} exists but this run or session may not call it "
                              f"(it may call: {may}; the tools it may call are chosen when it is created)",
                              name="sandlot.tools")
        raise AttributeError(f"module 'sandlot.tools' has no attribute {name!r}")

    return __getattr__


def parallel_map(tool: Callable[..., Any], items: Iterable[Any], max_workers: int = 16) -> list[Any]:
    """Call ``tool`` once per item, concurrently; results in item order.

    An item that is a tuple is passed as positional arguments, a dict as
    keyword arguments, anything else as the single argument.
    """
    def one(item: Any) -> Any:
        if isinstance(item, tuple):
            return tool(*item)
        if isinstance(item, dict):
            return tool(**item)
        return tool(item)

    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(items)))) as pool:
        return list(pool.map(one, items))


def _stub(channel: Channel, spec: dict[str, Any]) -> Callable[..., Any]:
    name = str(spec["name"])
    parameters = []
    for param in spec.get("params", []):
        default = param["default"] if "default" in param else inspect.Parameter.empty
        parameters.append(inspect.Parameter(param["name"], _KINDS.get(param.get("kind", ""),
                                            inspect.Parameter.POSITIONAL_OR_KEYWORD), default=default,
                                            annotation=param.get("annotation", inspect.Parameter.empty)))
    signature = inspect.Signature(parameters, return_annotation=spec.get("returns", inspect.Signature.empty))

    def tool(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{name}(): {exc}") from None
        try:
            reply = channel.call({"t": "call", "tool": name, "args": dict(bound.arguments)})
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}(): arguments must be JSON values ({exc})") from None
        if reply.get("ok"):
            return reply.get("value")
        error = reply.get("error") or {}
        raise ToolError(f"{name}: {error.get('message', 'the call failed')}")

    async def aio(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(tool, *args, **kwargs)

    tool.__name__ = tool.__qualname__ = name
    tool.__module__ = "sandlot.tools"
    tool.__doc__ = spec.get("doc") or None
    tool.__signature__ = signature  # type: ignore[attr-defined]
    tool.aio = aio  # type: ignore[attr-defined]
    return tool
