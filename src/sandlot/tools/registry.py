"""Host tools: plain Python callables and HTTP endpoints, typed and validated.

A ``Tool`` knows its name, its docstring, a pydantic model of its parameters
(taken from the type hints, so arguments from a sandbox are validated before
the tool runs) and how to run (a sync function in a worker thread, an async
one awaited, an HTTP request made by the host with credentials only the host
has). ``ToolRegistry`` holds them; operators build one in their own module and
point the server at it (``sandlot serve --tools mypkg.tools:registry``); a
plain list of functions works too.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import keyword
import os
import re
import sys
import textwrap
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, get_type_hints

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic_core import to_jsonable_python

from .. import tracing
from .._errors import InvalidRequestError, SetupError

Expose = Literal["code", "tool_call", "both"]
DEFAULT_TOOL_TIMEOUT = 30.0
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class ToolCallError(Exception):
    """A tool call failed; the message goes back to the caller (sandbox or model)."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Tool:
    name: str
    description: str
    parameters: type[BaseModel]
    run: Callable[[dict[str, Any]], Awaitable[Any]]
    returns: str = "Any"
    timeout: float = DEFAULT_TOOL_TIMEOUT
    expose: Expose = "code"
    param_kinds: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or keyword.iskeyword(self.name):
            raise SetupError(f"tool name {self.name!r} must be a Python identifier")

    def json_schema(self) -> dict[str, Any]:
        schema = self.parameters.model_json_schema()
        schema.pop("title", None)
        return schema

    def sandbox_spec(self) -> dict[str, Any]:
        """What the sandbox needs to build this tool's stub."""
        params = []
        for name, info in self.parameters.model_fields.items():
            param: dict[str, Any] = {"name": name, "kind": self.param_kinds.get(name, "positional_or_keyword"),
                                     "annotation": _type_text(info.annotation)}
            if not info.is_required():
                param["default"] = to_jsonable_python(info.get_default(call_default_factory=True))
            params.append(param)
        return {"name": self.name, "doc": self.description, "params": params, "returns": self.returns}

    def python_signature(self) -> str:
        """How the model sees it: a Python stub with the docstring."""
        parts = []
        for param in self.sandbox_spec()["params"]:
            text = f"{param['name']}: {param['annotation']}"
            if "default" in param:
                text += f" = {param['default']!r}"
            parts.append(text)
        doc = textwrap.indent(f'"""{self.description}"""', "    ") if self.description else "    ..."
        return f"def {self.name}({', '.join(parts)}) -> {self.returns}:\n{doc}"

    def openai_tool(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.json_schema()}}

    async def call(self, arguments: dict[str, Any], timeout: float | None = None) -> Any:
        """Validate, run within ``timeout`` (default: the tool's), return a JSON-able result; ToolCallError on failure."""
        timeout = self.timeout if timeout is None else timeout
        try:
            validated = self.parameters.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5])
            raise ToolCallError(f"invalid arguments: {problems}", "invalid_arguments") from None
        kwargs = {name: getattr(validated, name) for name in self.parameters.model_fields}
        try:
            result = await asyncio.wait_for(self.run(kwargs), timeout)
        except TimeoutError:
            raise ToolCallError(f"timed out after {timeout:g}s", "timeout") from None
        except ToolCallError:
            raise
        except Exception as exc:  # the tool's own failure: its message goes back, not a traceback of ours
            raise ToolCallError(f"{type(exc).__name__}: {exc}", "tool_error") from None
        try:
            return to_jsonable_python(result)
        except Exception:
            raise ToolCallError(f"the tool returned a {type(result).__name__}, which is not JSON-serializable",
                                "tool_error") from None


def tool_from_callable(func: Callable[..., Any], *, name: str | None = None, description: str | None = None,
                       timeout: float = DEFAULT_TOOL_TIMEOUT, expose: Expose = "code") -> Tool:
    """A tool from a function's signature, type hints and docstring."""
    signature = inspect.signature(func)
    hints = get_type_hints(func)
    fields: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise SetupError(f"tool {func.__name__}: *args, **kwargs and positional-only parameters are not supported")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
        kinds[param.name] = "keyword_only" if param.kind == param.KEYWORD_ONLY else "positional_or_keyword"
    model = create_model(f"{func.__name__}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    returns = _type_text(hints["return"]) if "return" in hints else "Any"

    if inspect.iscoroutinefunction(func):
        async def run(kwargs: dict[str, Any]) -> Any:
            return await func(**kwargs)
    else:
        async def run(kwargs: dict[str, Any]) -> Any:
            return await asyncio.to_thread(func, **kwargs)

    return Tool(name or func.__name__, inspect.cleandoc(description or func.__doc__ or ""), model, run, returns,
                timeout, expose, kinds)


def http_tool(name: str, method: str, url: str, *, description: str = "", params: dict[str, Any] | None = None,
              headers_from_env: dict[str, str] | None = None, timeout: float = DEFAULT_TOOL_TIMEOUT,
              expose: Expose = "code") -> Tool:
    """A tool that makes one HTTP request from the host.

    ``url`` may hold ``{placeholders}`` filled from the arguments; the other
    arguments go in the query string (GET, DELETE) or a JSON body. ``params``
    maps argument names to types, or to ``(type, default)``. Header values come
    from environment variables of the *server*, so credentials never enter a
    sandbox: ``headers_from_env={"Authorization": "WEATHER_API_AUTH"}``.
    """
    fields: dict[str, Any] = {key: value if isinstance(value, tuple) else (value, ...) for key, value in (params or {}).items()}
    model = create_model(f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    placeholders = set(re.findall(r"{(\w+)}", url))
    method = method.upper()

    async def run(kwargs: dict[str, Any]) -> Any:
        headers = {header: os.environ.get(env, "") for header, env in (headers_from_env or {}).items()}
        tracing.inject(headers)  # traceparent: the tool's service can join the trace
        rest = {k: to_jsonable_python(v) for k, v in kwargs.items() if k not in placeholders and v is not None}
        # Path values are quoted whole: a sandbox cannot steer the request to another path with "/" or "..".
        target = url.format(**{k: urllib.parse.quote(str(kwargs[k]), safe="") for k in placeholders})
        async with httpx.AsyncClient(timeout=timeout) as client:
            if method in ("GET", "DELETE", "HEAD"):
                response = await client.request(method, target, params=rest, headers=headers)
            else:
                response = await client.request(method, target, json=rest, headers=headers)
        if response.status_code >= 400:
            raise ToolCallError(f"HTTP {response.status_code}: {response.text[:300]}", "tool_error")
        try:
            return response.json()
        except ValueError:
            return response.text

    return Tool(name, description, model, run, "Any", timeout, expose)


def tools_from_openapi(document: dict[str, Any], *, base_url: str | None = None,
                       headers_from_env: dict[str, str] | None = None, timeout: float = DEFAULT_TOOL_TIMEOUT,
                       expose: Expose = "code") -> list[Tool]:
    """One HTTP tool per operation (named by its operationId) of an OpenAPI 3 document."""
    server = base_url or ((document.get("servers") or [{}])[0].get("url", ""))
    found = []
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or "operationId" not in operation:
                continue
            params: dict[str, Any] = {}
            for param in operation.get("parameters", []):
                if param.get("in") in ("path", "query"):
                    kind = _JSON_TYPES.get(param.get("schema", {}).get("type", "string"), Any)
                    params[param["name"]] = (kind, ...) if param.get("required") else (kind | None, None)
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            for prop, schema in body.get("properties", {}).items():
                kind = _JSON_TYPES.get(schema.get("type", "string"), Any)
                params[prop] = (kind, ...) if prop in body.get("required", []) else (kind | None, None)
            description = operation.get("summary") or operation.get("description") or ""
            name = re.sub(r"\W", "_", operation["operationId"])
            found.append(http_tool(name, method, server.rstrip("/") + path, description=description, params=params,
                                   headers_from_env=headers_from_env, timeout=timeout, expose=expose))
    return found


_JSON_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool,
                               "array": list, "object": dict}


class ToolRegistry:
    """The tools a server offers. Register functions with ``@registry.tool`` or ``registry.add(...)``."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self.withheld: tuple[str, ...] = ()
        """Tools of the registry this is a ``subset`` of that it leaves out (the sandbox names them when refused)."""
        for item in tools:
            self.add(item)

    def __repr__(self) -> str:
        return f"<ToolRegistry {sorted(self._tools)}>"

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    @property
    def names(self) -> list[str]:
        return sorted(self._tools)

    def add(self, item: Tool | Callable[..., Any], **options: Any) -> Tool:
        tool = item if isinstance(item, Tool) else tool_from_callable(item, **options)
        if tool.name in self._tools:
            raise SetupError(f"two tools are named {tool.name!r}")
        self._tools[tool.name] = tool
        return tool

    def tool(self, func: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Decorator: ``@registry.tool`` or ``@registry.tool(timeout=5, expose="both")``."""
        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            self.add(f, **options)
            return f

        return register(func) if func is not None else register

    def get(self, name: str) -> Tool:
        tool = self._tools.get(name)
        if tool is None:
            raise ToolCallError(f"no tool named {name!r}", "unknown_tool")
        return tool

    def subset(self, names: Iterable[str] | None) -> ToolRegistry:
        """Only the named tools (all of them for None); an unknown name is an invalid request."""
        if names is None:
            return self
        names = list(names)
        unknown = [n for n in names if n not in self._tools]
        if unknown:
            raise InvalidRequestError(f"no such tools: {', '.join(unknown)}")
        subset = ToolRegistry(self._tools[n] for n in names)
        subset.withheld = tuple(sorted(set(self._tools) - set(names)))
        return subset


def load_registry(spec: str) -> ToolRegistry:
    """``package.module:attribute``: a ToolRegistry, a list of functions/tools, or a callable returning one."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SetupError(f"--tools wants module:attribute, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like uvicorn's app dir: modules next to where the server starts
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise SetupError(f"cannot load tools from {spec!r}: {exc}") from None
    if callable(value) and not isinstance(value, ToolRegistry) and not inspect.signature(value).parameters:
        value = value()
    if isinstance(value, ToolRegistry):
        return value
    if isinstance(value, (list, tuple)):
        return ToolRegistry(value)
    raise SetupError(f"{spec!r} is a {type(value).__name__}; expected a ToolRegistry or a list of functions")


def _type_text(annotation: Any) -> str:
    if annotation is None or annotation is type(None):
        return "None"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


__all__ = ["Tool", "ToolCallError", "ToolRegistry", "http_tool", "load_registry", "tool_from_callable",
           "tools_from_openapi"]
