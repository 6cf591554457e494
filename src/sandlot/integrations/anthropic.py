"""sandlot tools for Anthropic's tool use (the Messages API).

    import anthropic
    from sandlot.client import Client
    from sandlot.integrations.anthropic import AnthropicTools

    with Client("http://127.0.0.1:8765") as sandlot, AnthropicTools(sandlot) as tools:
        message = claude.messages.create(model=..., max_tokens=4096, messages=messages, tools=tools.definitions())
        while message.stop_reason == "tool_use":
            messages += [{"role": "assistant", "content": message.content},
                         {"role": "user", "content": tools.tool_results(message)}]
            message = claude.messages.create(...)

Nothing here imports ``anthropic``: definitions and results are plain dicts of
the SDK's param types, and ``tool_use`` blocks are read from the SDK's objects
or from the same blocks as dicts. Figures go back as image blocks inside the
``tool_result`` (``images=False``: described in a line each instead).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from ._core import NOT_SHOWN, SandlotTools, TextPart, ToolOutput, attr

if TYPE_CHECKING:
    from anthropic.types import ImageBlockParam, Message, TextBlockParam, ToolParam, ToolResultBlockParam, ToolUseBlock

__all__ = ["AnthropicTools"]

MediaType = Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
MEDIA_TYPES: dict[str, MediaType] = {"image/jpeg": "image/jpeg", "image/png": "image/png", "image/gif": "image/gif",
                                     "image/webp": "image/webp"}


class AnthropicTools(SandlotTools):
    """sandlot tools for ``client.messages.create(tools=...)``."""

    def definitions(self) -> list[ToolParam]:
        """The ``tools=`` entries."""
        return [{"name": spec.name, "description": spec.description, "input_schema": spec.json_schema()} for spec in self.specs]

    def tool_result(self, block: ToolUseBlock | Mapping[str, Any]) -> ToolResultBlockParam:
        """Run one ``tool_use`` block; the ``tool_result`` block answering it."""
        return self._result(block, self.call(attr(block, "name"), attr(block, "input")))

    async def atool_result(self, block: ToolUseBlock | Mapping[str, Any]) -> ToolResultBlockParam:
        return self._result(block, await self.acall(attr(block, "name"), attr(block, "input")))

    def tool_results(self, turn: Message | Sequence[Any]) -> list[ToolResultBlockParam]:
        """Run the message's ``tool_use`` blocks for these tools, in order: the content of the next user message
        (results for other tools' blocks go in the same message)."""
        return [self.tool_result(block) for block in self._calls(turn)]

    async def atool_results(self, turn: Message | Sequence[Any]) -> list[ToolResultBlockParam]:
        return [await self.atool_result(block) for block in self._calls(turn)]

    def _calls(self, turn: Any) -> list[Any]:
        blocks = turn if isinstance(turn, Sequence) else attr(turn, "content") or []
        return [block for block in blocks if attr(block, "type") == "tool_use" and self.handles(attr(block, "name"))]

    def _result(self, block: Any, out: ToolOutput) -> ToolResultBlockParam:
        content: list[TextBlockParam | ImageBlockParam] = []
        texts: list[str] = []
        n = 0
        for part in out.parts:
            if isinstance(part, TextPart):
                texts.append(part.text)
                continue
            media_type = MEDIA_TYPES.get(part.mime_type)
            if not self.images or media_type is None:
                n += 1
                texts.append(NOT_SHOWN.format(n=f"image {n}", description=part.describe()))
                continue
            if texts:
                content.append({"type": "text", "text": "\n".join(texts)})
                texts = []
            content.append({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": part.data}})
        if texts:
            content.append({"type": "text", "text": "\n".join(texts)})
        return {"type": "tool_result", "tool_use_id": attr(block, "id"), "content": content, "is_error": out.is_error}
