"""The provider-neutral core: the tools, what models read about them, and running a call.

``SandlotTools`` holds a sandlot client and, for ``run_in_session``, one session
that it opens on first use and deletes on ``close()``. ``call(name, arguments)``
(or ``acall`` with an ``AsyncClient``) runs a model's tool call and returns a
``ToolOutput``: ordered text and image parts, whether it is an error, and the
full ``ExecutionResult``. The provider modules only translate specs and outputs
into each API's shapes.

What a call can go wrong with, and who hears of it:

* the model's code failed, or hit a limit: a normal output with ``is_error``
  (the traceback, or a note naming the limit) and the full result;
* the model's call was wrong (unknown tool, arguments that are not JSON or do
  not fit the schema, a timeout the server refuses, code too large, no capacity
  right now): an output with ``is_error`` and a message saying what to do;
* the session this object opened expired or was lost: a new one is opened, the
  code runs there, and the output starts with a note that earlier state is gone;
* anything else (the server is unreachable, a wrong API key, a sandbox that
  failed, a session you passed in that is gone): the ``SandlotError`` is raised
  to your code, since the model cannot do anything about it.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._bundles import what_to_show
from .._errors import CapacityError, InvalidRequestError, NotFoundError, TooLargeError
from .._models import DisplayData, ErrorOutput, ExecuteResult, ExecutionResult, StreamOutput
from ..client import AsyncClient, AsyncClientSession, Client, ClientSession

ToolName = Literal["run_python", "run_in_session"]
RUN_PYTHON: ToolName = "run_python"
RUN_IN_SESSION: ToolName = "run_in_session"
TOOL_NAMES: tuple[ToolName, ...] = (RUN_PYTHON, RUN_IN_SESSION)

DEFAULT_MAX_CHARS = 20_000
NO_OUTPUT = "[no output: the code ran without printing anything. print() values, or end the code with an expression to see it]"
SESSION_REPLACED = ("[your previous session had expired or was lost, so this code ran in a new, empty session: variables, "
                    "imports and files from earlier calls are gone]")
NOT_SHOWN = "[{n}: {description}; it cannot be shown in this result]"
STOPPED = {"timeout": "it reached its time limit", "memory": "it ran out of memory",
           "killed": "it was killed (it hit a resource limit, or the sandbox was stopped)"}


# ---- what a call returns ---------------------------------------------------------------

@dataclass(frozen=True)
class TextPart:
    """Text for the model."""

    text: str


@dataclass(frozen=True)
class ImagePart:
    """An image the run produced (a matplotlib figure, a displayed image): base64 ``data`` of ``mime_type``."""

    data: str
    mime_type: str
    width: int | None = None
    height: int | None = None

    @property
    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.data}"

    def to_bytes(self) -> bytes:
        return base64.b64decode(self.data)

    def describe(self) -> str:
        """``640x480 PNG image``, for a model that cannot be shown the image itself."""
        kind = self.mime_type.removeprefix("image/").upper()
        size = f"{self.width}x{self.height} " if self.width and self.height else ""
        return f"{size}{kind} image"


Part = TextPart | ImagePart


@dataclass(frozen=True)
class ToolOutput:
    """The outcome of one tool call: what the model should read, in order.

    ``parts`` alternate text and images (adjacent texts are joined), never empty.
    ``is_error`` is set when the code failed or hit a limit, or the call itself was wrong.
    ``result`` is the full execution record, when code ran.
    """

    tool: str
    parts: tuple[Part, ...]
    is_error: bool = False
    result: ExecutionResult | None = None

    @property
    def images(self) -> list[ImagePart]:
        return [part for part in self.parts if isinstance(part, ImagePart)]

    def text(self, image_note: str | Callable[[ImagePart], str] = NOT_SHOWN) -> str:
        """All the text, each image replaced by a line, for tool results that hold only text: ``image_note``
        with ``{n}`` (``image 1``, ``image 2``, ...) and ``{description}`` (``ImagePart.describe()``), or a
        function of the image that returns such a template."""
        pieces, n = [], 0
        for part in self.parts:
            if isinstance(part, TextPart):
                pieces.append(part.text)
            else:
                n += 1
                template = image_note if isinstance(image_note, str) else image_note(part)
                pieces.append(template.format(n=f"image {n}", description=part.describe()))
        return "\n".join(pieces)


@dataclass(frozen=True)
class ToolSpec:
    """One tool as models see it: its name, description and JSON Schema for the arguments."""

    name: ToolName
    description: str
    parameters: dict[str, Any] = field(repr=False)

    def json_schema(self, *, strict: bool = False) -> dict[str, Any]:
        """A copy of the parameters' schema. ``strict``: in the form OpenAI's strict mode asks for, every
        property required and the optional ones nullable (the model then sends ``null`` for "not given")."""
        schema = copy.deepcopy(self.parameters)
        if strict:
            for name, prop in schema["properties"].items():
                if name not in schema["required"]:
                    prop["type"] = [prop["type"], "null"]
            schema["required"] = list(schema["properties"])
        return schema


# ---- arguments ---------------------------------------------------------------------------

class CodeArgs(BaseModel):
    """The arguments of both tools, checked as the schemas promise."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Python 3 source, as you would type it into a notebook cell. print() what you want to "
                                  "see, or end with an expression to get its value.")
    timeout: float | None = Field(None, gt=0, description="Seconds before the run is stopped; omit it (or pass null) "
                                                          "for the default, and raise it only for long computations.")


def _schema(default_timeout: float | None, max_timeout: float | None) -> dict[str, Any]:
    code = CodeArgs.model_fields["code"].description
    timeout: dict[str, Any] = {"type": "number", "minimum": 1, "description": CodeArgs.model_fields["timeout"].description}
    if default_timeout is not None:
        timeout["description"] += f" Default {default_timeout:g}."
    if max_timeout is not None:
        timeout["maximum"] = max_timeout
        timeout["description"] += f" At most {max_timeout:g}."
    return {"type": "object", "properties": {"code": {"type": "string", "description": code}, "timeout": timeout},
            "required": ["code"], "additionalProperties": False}


def _descriptions(names: Sequence[ToolName], notes: str | None) -> dict[ToolName, str]:
    common = (
        " To see a value, print() it or end the code with an expression: its value is shown like a notebook's Out[n]. "
        "Matplotlib figures are captured by themselves (no plt.show() or savefig needed). An exception comes back as "
        "its traceback; so does a run stopped by a limit. The sandbox has no network access, so nothing can be "
        "downloaded or pip-installed: use the standard library and the packages already installed (numpy, pandas and "
        "matplotlib among them). Each run has a time limit (pass timeout for a longer one) and a memory limit."
    )
    both = RUN_PYTHON in names and RUN_IN_SESSION in names
    descriptions: dict[ToolName, str] = {
        RUN_PYTHON: "Run Python 3 code once in a fresh, isolated sandbox and get back what it printed, the value of its "
                    "last expression and any figures. Nothing persists between calls: each one starts from an empty "
                    "interpreter" + (" (to build on earlier work, use run_in_session)." if both else ".") + common,
        RUN_IN_SESSION: "Run Python 3 code in your persistent Python session, like a notebook cell: variables, functions, "
                        "imports and files from earlier run_in_session calls are still there, so build on them instead "
                        "of recomputing. Code can write files to its working directory and read them in later calls. "
                        "If the session had to be restarted (it ran out of memory, or expired), the result says so and "
                        "earlier variables are gone." + (" For a one-off computation, use run_python." if both else "")
                        + common,
    }
    return {name: descriptions[name] + (f"\n\n{notes.strip()}" if notes else "") for name in names}


# ---- the tools -------------------------------------------------------------------------

class ToolCallError(Exception):
    """A call the model got wrong: the message is for the model."""


class SandlotTools:
    """sandlot as function-calling tools, backed by a ``Client`` (``call``) or an ``AsyncClient`` (``acall``).

    ``tools``: which tools to offer, any of ``run_python`` (one-shot, fresh sandbox) and ``run_in_session``
    (a persistent interpreter). ``session``: a session of yours for ``run_in_session`` (you close it);
    without one, the first ``run_in_session`` call opens one (``idle_timeout`` seconds without a call
    close it on the server), which ``close()`` / ``aclose()`` deletes. ``timeout`` is the run timeout when
    the model names none (``None``: the server's); ``max_timeout`` caps what the model may ask for.
    ``max_chars`` bounds the text of one result (long output keeps its head and tail). ``notes`` is
    added to every description: what data is there, which packages to use, and the like. ``images``: send
    figures back as images where the provider allows it (``None``: the provider class's default,
    ``images_by_default``); otherwise a one-line description stands in for each.
    """

    images_by_default = True

    def __init__(self, client: Client | AsyncClient | None = None, *, session: ClientSession | AsyncClientSession | None = None,
                 tools: Sequence[ToolName] = TOOL_NAMES, timeout: float | None = None, max_timeout: float | None = None,
                 idle_timeout: float | None = None, max_chars: int = DEFAULT_MAX_CHARS, notes: str | None = None,
                 images: bool | None = None) -> None:
        if client is None:
            if session is None:
                raise TypeError("SandlotTools needs a client, a session, or both")
            client = session._client
        self.is_async = isinstance(client, AsyncClient)
        if session is not None and isinstance(session, AsyncClientSession) != self.is_async:
            raise TypeError("the session and the client must both be sync (Client) or both async (AsyncClient)")
        unknown = [name for name in tools if name not in TOOL_NAMES]
        if unknown or not tools:
            raise ValueError(f"unknown tools {unknown}; choose from {', '.join(TOOL_NAMES)}")
        if max_chars < 500:
            raise ValueError("max_chars must be at least 500")
        self.client = client
        self.timeout = timeout
        self.max_timeout = max_timeout
        self.idle_timeout = idle_timeout
        self.max_chars = max_chars
        self.images = self.images_by_default if images is None else images
        self._session = session
        self._owns_session = session is None
        self._lock = threading.Lock()
        self._alock = asyncio.Lock()
        descriptions = _descriptions(list(dict.fromkeys(tools)), notes)
        self.specs: tuple[ToolSpec, ...] = tuple(ToolSpec(name, text, _schema(timeout, max_timeout))
                                                 for name, text in descriptions.items())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} tools={[s.name for s in self.specs]} session={self._session!r}>"

    def handles(self, name: str) -> bool:
        """Whether ``name`` is one of this object's tools (route other tool calls elsewhere)."""
        return any(spec.name == name for spec in self.specs)

    # ---- the session ---------------------------------------------------------------------

    def get_session(self) -> ClientSession:
        """The session ``run_in_session`` uses, opened now if need be: upload data to it before the conversation."""
        client = self._sync_client()
        with self._lock:
            if self._session is None:
                self._session = client.session(idle_timeout=self.idle_timeout)
            assert isinstance(self._session, ClientSession)
            return self._session

    async def aget_session(self) -> AsyncClientSession:
        """``get_session`` for an ``AsyncClient``."""
        client = self._async_client()
        async with self._alock:
            if self._session is None:
                self._session = await client.session(idle_timeout=self.idle_timeout)
            assert isinstance(self._session, AsyncClientSession)
            return self._session

    def close(self) -> None:
        """Delete the session this object opened, if any; a later ``run_in_session`` call opens a new one.
        A session you passed in is yours to close. The client stays open."""
        if not self._owns_session or self._session is None:
            return
        if self.is_async:
            raise TypeError(f"{type(self).__name__} has an AsyncClient: use aclose()")
        session, self._session = self._session, None
        assert isinstance(session, ClientSession)
        session.close()

    async def aclose(self) -> None:
        """``close`` for an ``AsyncClient`` (with a ``Client``, ``close`` in a worker thread)."""
        if not self.is_async:
            await asyncio.to_thread(self.close)
            return
        if not self._owns_session or self._session is None:
            return
        session, self._session = self._session, None
        assert isinstance(session, AsyncClientSession)
        await session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ---- calls ---------------------------------------------------------------------------

    def call(self, name: str, arguments: Mapping[str, Any] | str | None) -> ToolOutput:
        """Run one tool call; ``arguments`` as the model gave them (a JSON string or a mapping)."""
        client = self._sync_client()
        try:
            args = self._arguments(name, arguments)
            notes: list[str] = []
            if name == RUN_PYTHON:
                result = client.execute(args.code, timeout=self._timeout(args))
            else:
                session = self.get_session()
                try:
                    result = session.execute(args.code, timeout=self._timeout(args))
                except NotFoundError:
                    self._replace_session(session)
                    notes.append(SESSION_REPLACED)
                    result = self.get_session().execute(args.code, timeout=self._timeout(args))
        except ToolCallError as exc:
            return failure(name, str(exc))
        except (InvalidRequestError, TooLargeError, CapacityError) as exc:
            return failure(name, _model_message(exc))
        return output(name, result, self.max_chars, notes)

    async def acall(self, name: str, arguments: Mapping[str, Any] | str | None) -> ToolOutput:
        """``call``, awaited: natively with an ``AsyncClient``, in a worker thread with a ``Client``."""
        if not self.is_async:
            return await asyncio.to_thread(self.call, name, arguments)
        client = self._async_client()
        try:
            args = self._arguments(name, arguments)
            notes: list[str] = []
            if name == RUN_PYTHON:
                result = await client.execute(args.code, timeout=self._timeout(args))
            else:
                session = await self.aget_session()
                try:
                    result = await session.execute(args.code, timeout=self._timeout(args))
                except NotFoundError:
                    await self._areplace_session(session)
                    notes.append(SESSION_REPLACED)
                    result = await (await self.aget_session()).execute(args.code, timeout=self._timeout(args))
        except ToolCallError as exc:
            return failure(name, str(exc))
        except (InvalidRequestError, TooLargeError, CapacityError) as exc:
            return failure(name, _model_message(exc))
        return output(name, result, self.max_chars, notes)

    # ---- helpers -------------------------------------------------------------------------

    def _arguments(self, name: str, arguments: Mapping[str, Any] | str | None) -> CodeArgs:
        if not self.handles(name):
            raise ToolCallError(f"unknown tool {name!r}; the sandlot tools here are {', '.join(s.name for s in self.specs)}")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError as exc:
                raise ToolCallError(f"the arguments of {name} are not valid JSON ({exc}); pass an object like "
                                    '{"code": "print(1)"}') from None
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise ToolCallError(f"the arguments of {name} must be a JSON object like {{\"code\": \"print(1)\"}}")
        try:
            args = CodeArgs.model_validate(dict(arguments))
        except ValidationError as exc:
            raise ToolCallError(f"invalid arguments for {name}: {validation_message(exc)}") from None
        if args.timeout is not None and self.max_timeout is not None and args.timeout > self.max_timeout:
            raise ToolCallError(f"invalid arguments for {name}: timeout may be at most {self.max_timeout:g} seconds")
        return args

    def _timeout(self, args: CodeArgs) -> float | None:
        return args.timeout if args.timeout is not None else self.timeout

    def _replace_session(self, stale: ClientSession) -> None:
        """The session is gone on the server: forget it, if it was ours, so the next call opens another."""
        if not self._owns_session:
            raise NotFoundError(f"the session {stale.id} given to {type(self).__name__} no longer exists on the server")
        with self._lock:
            if self._session is stale:
                self._session = None

    async def _areplace_session(self, stale: AsyncClientSession) -> None:
        if not self._owns_session:
            raise NotFoundError(f"the session {stale.id} given to {type(self).__name__} no longer exists on the server")
        async with self._alock:
            if self._session is stale:
                self._session = None

    def _sync_client(self) -> Client:
        if not isinstance(self.client, Client):
            raise TypeError(f"{type(self).__name__} has an AsyncClient: use the async methods (acall, atool_result, ...)")
        return self.client

    def _async_client(self) -> AsyncClient:
        if not isinstance(self.client, AsyncClient):
            raise TypeError(f"{type(self).__name__} has a Client: use the sync methods (call, tool_result, ...)")
        return self.client


def attr(obj: Any, name: str) -> Any:
    """A field of an SDK object or of the same thing as a dict (from a message history, or another client)."""
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5])


def _model_message(exc: Exception) -> str:
    if isinstance(exc, CapacityError):
        return f"{exc} (try again in about {max(1, round(exc.retry_after))} s)"
    return str(exc)


def failure(tool: str, message: str) -> ToolOutput:
    return ToolOutput(tool, (TextPart(message),), is_error=True)


# ---- a result as parts ---------------------------------------------------------------------

def output(tool: str, result: ExecutionResult, max_chars: int = DEFAULT_MAX_CHARS, notes: Sequence[str] = ()) -> ToolOutput:
    """What a model reads of a run: stdout, stderr (marked), values (``Out[n]: ...``), images and the
    traceback, in the order they happened; bracketed notes for a limit, cut output, a restart; text
    within ``max_chars`` (the head and tail of long output are kept)."""
    pieces: list[Part] = [TextPart(note) for note in notes]
    if result.restarted:
        pieces.append(TextPart("[the session's interpreter was restarted before this code ran (the previous one hit a "
                               "limit or crashed): variables and imports from earlier calls are gone; files are kept]"))
    said: list[str] = []
    shown_error = False
    for out in result.outputs:
        if isinstance(out, StreamOutput):
            said.append(out.text)
            pieces.append(TextPart(out.text if out.name == "stdout" else "[stderr]\n" + out.text.strip("\n")))
        elif isinstance(out, ExecuteResult):
            prefix = f"Out[{out.execution_count}]: " if out.execution_count is not None else ""
            pieces += _bundle(out.data, prefix)
        elif isinstance(out, DisplayData):
            pieces += _bundle(out.data)
        elif isinstance(out, ErrorOutput):
            shown_error = True
            pieces += _error(out.ename, out.evalue, out.traceback, said)
    if result.error is not None and not shown_error:
        pieces += _error(result.error.ename, result.error.evalue, result.error.traceback, said)
    if result.status in STOPPED and not any("[sandlot]" in text for text in said):
        pieces.append(TextPart(f"[the run was stopped: {STOPPED[result.status]}]"))
    if result.truncated:
        pieces.append(TextPart("[output truncated: the run printed more than the output limit and the rest was dropped; "
                               "print less, or write large results to a file]"))
    parts = _fit(_merge(pieces), max_chars) or [TextPart(NO_OUTPUT)]
    return ToolOutput(tool, tuple(parts), is_error=result.status != "ok", result=result)


def _error(ename: str, evalue: str, traceback: list[str], said: list[str]) -> list[Part]:
    if traceback:
        return [TextPart("\n".join(traceback))]
    if evalue and any(evalue in text for text in said):
        return []  # a limit the server already explained on stderr
    return [TextPart(f"{ename}: {evalue}" if evalue else ename)]


def _bundle(data: dict[str, Any], prefix: str = "") -> list[Part]:
    """A MIME bundle, as ``_bundles.what_to_show`` chooses: an image (after its ``Out[n]:``), or a text."""
    shown = what_to_show(data)
    if shown is None:
        return []
    if shown.is_image:
        image = ImagePart(shown.value, shown.mime, *_image_size(shown.value, shown.mime))
        return ([TextPart(prefix.rstrip())] if prefix else []) + [image]
    return [TextPart(prefix + shown.value)]


def _image_size(encoded: str, mime: str) -> tuple[int | None, int | None]:
    """Width and height from a PNG's header; ``None`` for other types."""
    if mime != "image/png":
        return None, None
    head = base64.b64decode(encoded[:32])
    if len(head) < 24 or not head.startswith(b"\x89PNG\r\n\x1a\n"):
        return None, None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _merge(pieces: list[Part]) -> list[Part]:
    """Join adjacent texts (one per line), drop empty ones."""
    merged: list[Part] = []
    for piece in pieces:
        if isinstance(piece, TextPart):
            text = piece.text.strip("\n")
            if not text.strip():
                continue
            if merged and isinstance(merged[-1], TextPart):
                merged[-1] = TextPart(merged[-1].text + "\n" + text)
                continue
            piece = TextPart(text)
        merged.append(piece)
    return merged


def _fit(parts: list[Part], budget: int) -> list[Part]:
    """Cut the texts to ``budget`` characters in all, each in proportion to its length, keeping heads and tails."""
    total = sum(len(p.text) for p in parts if isinstance(p, TextPart))
    if total <= budget:
        return parts
    return [TextPart(_cut(p.text, max(200, budget * len(p.text) // total))) if isinstance(p, TextPart) else p for p in parts]


def _cut(text: str, budget: int) -> str:
    if len(text) <= budget:
        return text
    keep = max(budget - 100, 100)
    head, tail = text[: keep * 2 // 3], text[-(keep // 3):]
    left_out = len(text) - len(head) - len(tail)
    return f"{head}\n[... {left_out} characters left out; print less, or write large output to a file and read parts ...]\n{tail}"

