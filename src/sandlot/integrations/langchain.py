"""sandlot as LangChain tools (``langchain-core`` ``BaseTool``).

    from sandlot.client import Client
    from sandlot.integrations.langchain import RunPythonTool, SessionPythonTool

    with Client("http://127.0.0.1:8765") as sandlot, sandlot.session() as session:
        tools = [RunPythonTool(sandlot), SessionPythonTool(session)]
        model = init_chat_model("openai:gpt-5").bind_tools(tools)     # or create_agent(model, tools)

``RunPythonTool`` runs code once in a fresh sandbox; ``SessionPythonTool`` runs
it in one session, kept between calls: one you pass in (and close), or, given a
client, one it opens on first use and deletes on ``close()`` / ``aclose()``.
Both work with a ``Client`` (``invoke``; ``ainvoke`` runs it in a thread) or an
``AsyncClient`` (``ainvoke``).

Results are ``content_and_artifact``: the ``ToolMessage`` content is what the
model reads (text; with ``images=True``, text and standard image blocks), and
its ``artifact`` is the full ``ExecutionResult``. Code that fails is a normal
result whose content is the traceback. A call the model got wrong (arguments
that do not fit the schema, a timeout the server refuses, no capacity right now)
is a ``ToolMessage`` with ``status="error"`` saying what to do.

Needs ``langchain-core`` 1.x (``pip install 'sandlot[langchain]'``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import PrivateAttr, ValidationError

from .._models import ExecutionResult
from ..client import AsyncClient, AsyncClientSession, Client, ClientSession
from ._core import (
    DEFAULT_MAX_CHARS,
    RUN_IN_SESSION,
    RUN_PYTHON,
    CodeArgs,
    ImagePart,
    SandlotTools,
    TextPart,
    ToolName,
    ToolOutput,
    validation_message,
)

try:
    from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
    from langchain_core.tools import BaseTool, ToolException
    from langchain_core.tools.base import ArgsSchema
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("sandlot.integrations.langchain needs the langchain-core package: pip install 'sandlot[langchain]'") from exc

__all__ = ["RunPythonTool", "SessionPythonTool"]

Content = str | list[str | dict[str, Any]]


def _arguments(code: str, timeout: float | None) -> dict[str, Any]:
    return {"code": code} if timeout is None else {"code": code, "timeout": timeout}


def _invalid_arguments(exc: Any) -> str:
    detail = validation_message(exc) if isinstance(exc, ValidationError) else str(exc)
    return f"invalid arguments: {detail}"


class _SandlotTool(BaseTool):
    """What both tools share: the schema, the result format, and a ``SandlotTools`` core that runs the calls."""

    kind: ClassVar[ToolName]
    args_schema: ArgsSchema | None = CodeArgs
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: Any = True
    handle_validation_error: Any = _invalid_arguments
    images: bool = False
    """Content as text and image blocks (for vision models whose integration takes images in tool messages)."""

    _tools: SandlotTools = PrivateAttr()

    def __init__(self, tools: SandlotTools, **kwargs: Any) -> None:
        kwargs.setdefault("name", self.kind)
        # A renamed tool's description speaks of it by its new name.
        kwargs.setdefault("description", tools.specs[0].description.replace(self.kind, kwargs["name"]))
        super().__init__(**kwargs)
        self._tools = tools

    @property
    def sandlot(self) -> SandlotTools:
        """The core that runs the calls (its ``get_session()`` / ``aget_session()`` give the session)."""
        return self._tools

    def _run(self, code: str, timeout: float | None = None,
             run_manager: CallbackManagerForToolRun | None = None) -> tuple[Content, ExecutionResult | None]:
        return self._finish(self._tools.call(self.kind, _arguments(code, timeout)))

    async def _arun(self, code: str, timeout: float | None = None,
                    run_manager: AsyncCallbackManagerForToolRun | None = None) -> tuple[Content, ExecutionResult | None]:
        return self._finish(await self._tools.acall(self.kind, _arguments(code, timeout)))

    def _finish(self, out: ToolOutput) -> tuple[Content, ExecutionResult | None]:
        if out.result is None:
            raise ToolException(out.text())  # the call itself was wrong: the message says what to do
        if not self.images or not out.images:
            return out.text(), out.result
        blocks: list[str | dict[str, Any]] = []
        for part in out.parts:
            if isinstance(part, TextPart):
                blocks.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                blocks.append({"type": "image", "base64": part.data, "mime_type": part.mime_type})
        return blocks, out.result


class RunPythonTool(_SandlotTool):
    """``run_python``: run code once in a fresh sandbox, with a ``Client`` or an ``AsyncClient``.

    ``timeout``, ``max_timeout``, ``max_chars``, ``notes``: as for ``SandlotTools``; other keyword
    arguments are ``BaseTool`` fields (``name``, ``description``, ``images``, ``tags``, ...).
    """

    kind: ClassVar[ToolName] = RUN_PYTHON

    def __init__(self, client: Client | AsyncClient, *, timeout: float | None = None, max_timeout: float | None = None,
                 max_chars: int = DEFAULT_MAX_CHARS, notes: str | None = None, **kwargs: Any) -> None:
        super().__init__(SandlotTools(client, tools=(RUN_PYTHON,), timeout=timeout, max_timeout=max_timeout,
                                      max_chars=max_chars, notes=notes), **kwargs)


class SessionPythonTool(_SandlotTool):
    """``run_in_session``: run code in one persistent session, like notebook cells.

    Given a ``ClientSession`` / ``AsyncClientSession``, it runs there (the session is yours to close).
    Given a ``Client`` / ``AsyncClient``, it opens a session on first use and deletes it on ``close()``
    / ``aclose()`` (or when that session's idle timeout, ``idle_timeout``, runs out on the server).
    """

    kind: ClassVar[ToolName] = RUN_IN_SESSION

    def __init__(self, target: ClientSession | AsyncClientSession | Client | AsyncClient, *, timeout: float | None = None,
                 max_timeout: float | None = None, idle_timeout: float | None = None, max_chars: int = DEFAULT_MAX_CHARS,
                 notes: str | None = None, **kwargs: Any) -> None:
        client = target if isinstance(target, Client | AsyncClient) else None
        session = target if isinstance(target, ClientSession | AsyncClientSession) else None
        super().__init__(SandlotTools(client, session=session, tools=(RUN_IN_SESSION,), timeout=timeout,
                                      max_timeout=max_timeout, idle_timeout=idle_timeout, max_chars=max_chars, notes=notes),
                         **kwargs)

    def close(self) -> None:
        """Delete the session this tool opened, if any (a later call opens a new one)."""
        self._tools.close()

    async def aclose(self) -> None:
        await self._tools.aclose()
