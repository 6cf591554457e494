"""sandlot tools for OpenAI's function calling: Chat Completions and the Responses API.

    from openai import OpenAI
    from sandlot.client import Client
    from sandlot.integrations.openai import OpenAIResponsesTools

    with Client("http://127.0.0.1:8765") as sandlot, OpenAIResponsesTools(sandlot) as tools:
        response = OpenAI().responses.create(model="gpt-5", input=question, tools=tools.definitions())
        while any(item.type == "function_call" for item in response.output):
            response = OpenAI().responses.create(model="gpt-5", previous_response_id=response.id,
                                                 input=tools.tool_results(response), tools=tools.definitions())

Nothing here imports ``openai``: definitions and results are plain dicts of the
SDK's param types, and tool calls are read from the SDK's objects or from the
same things as dicts. A chat-completions tool message holds only text, so there
figures are described in a line each; ``OpenAIChatTools(images=True)`` then adds
a user message with the images after the tool messages. Responses API function
call outputs carry the images themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._core import NOT_SHOWN, ImagePart, SandlotTools, TextPart, ToolOutput, attr

if TYPE_CHECKING:
    from openai.types.chat import (
        ChatCompletion,
        ChatCompletionContentPartImageParam,
        ChatCompletionContentPartTextParam,
        ChatCompletionFunctionToolParam,
        ChatCompletionMessage,
        ChatCompletionMessageFunctionToolCall,
        ChatCompletionMessageParam,
        ChatCompletionToolMessageParam,
        ChatCompletionUserMessageParam,
    )
    from openai.types.responses import (
        FunctionToolParam,
        Response,
        ResponseFunctionToolCall,
        ResponseInputImageContentParam,
        ResponseInputTextContentParam,
    )
    from openai.types.responses.response_input_param import FunctionCallOutput

__all__ = ["OpenAIChatTools", "OpenAIResponsesTools"]

SHOWN_AFTER = "[{n}: {description}; shown in the user message after the tool results]"


class OpenAIChatTools(SandlotTools):
    """sandlot tools for the Chat Completions API (``client.chat.completions.create(tools=...)``).

    ``images`` (default off): ``tool_results`` ends with a user message holding the run's figures, for
    vision models (a tool message can hold only text; without it, each figure is described in a line).
    """

    images_by_default = False

    def definitions(self, *, strict: bool = True) -> list[ChatCompletionFunctionToolParam]:
        """The ``tools=`` entries. ``strict``: OpenAI's strict schema mode (every argument present, the
        optional ones as ``null``), which the schemas are written for."""
        return [{"type": "function", "function": {
            "name": spec.name, "description": spec.description,
            "parameters": spec.json_schema(strict=strict), "strict": strict}}
            for spec in self.specs]

    def tool_result(self, tool_call: ChatCompletionMessageFunctionToolCall | Mapping[str, Any]) -> ChatCompletionToolMessageParam:
        """Run one of the assistant message's ``tool_calls``; the ``{"role": "tool"}`` message answering it."""
        name, arguments = _function(tool_call)
        return _tool_message(tool_call, self.call(name, arguments), NOT_SHOWN)

    async def atool_result(self, tool_call: ChatCompletionMessageFunctionToolCall | Mapping[str, Any]
                           ) -> ChatCompletionToolMessageParam:
        name, arguments = _function(tool_call)
        return _tool_message(tool_call, await self.acall(name, arguments), NOT_SHOWN)

    def tool_results(self, turn: ChatCompletion | ChatCompletionMessage | Mapping[str, Any]) -> list[ChatCompletionMessageParam]:
        """Run the turn's calls to these tools, in order: the messages to append to the conversation (calls to
        other tools are left to you; their tool messages go before the images message, if there is one)."""
        return self._finish([(call, self.call(*_function(call))) for call in self._calls(turn)])

    async def atool_results(self, turn: ChatCompletion | ChatCompletionMessage | Mapping[str, Any]
                            ) -> list[ChatCompletionMessageParam]:
        return self._finish([(call, await self.acall(*_function(call))) for call in self._calls(turn)])

    def _calls(self, turn: Any) -> list[Any]:
        choices = attr(turn, "choices")
        message = attr(choices[0], "message") if choices else turn
        return [call for call in attr(message, "tool_calls") or []
                if attr(call, "type") in (None, "function") and self.handles(_function(call)[0])]

    def _finish(self, done: list[tuple[Any, ToolOutput]]) -> list[ChatCompletionMessageParam]:
        note = SHOWN_AFTER if self.images else NOT_SHOWN
        messages: list[ChatCompletionMessageParam] = [_tool_message(call, out, note) for call, out in done]
        content: list[ChatCompletionContentPartTextParam | ChatCompletionContentPartImageParam] = []
        for call, out in done:
            for n, image in enumerate(out.images if self.images else [], 1):
                content.append({"type": "text", "text": f"image {n} of tool call {attr(call, 'id')}:"})
                content.append({"type": "image_url", "image_url": {"url": image.data_url}})
        if content:
            images: ChatCompletionUserMessageParam = {"role": "user", "content": content}
            messages.append(images)
        return messages


class OpenAIResponsesTools(SandlotTools):
    """sandlot tools for the Responses API (``client.responses.create(tools=...)``).

    ``images`` (default on): figures go back in the ``function_call_output`` as ``input_image`` items.
    """

    def definitions(self, *, strict: bool = True) -> list[FunctionToolParam]:
        """The ``tools=`` entries (``strict``: see ``OpenAIChatTools.definitions``)."""
        return [{"type": "function", "name": spec.name, "description": spec.description,
                 "parameters": spec.json_schema(strict=strict), "strict": strict}
                for spec in self.specs]

    def tool_result(self, item: ResponseFunctionToolCall | Mapping[str, Any]) -> FunctionCallOutput:
        """Run one ``function_call`` output item; the ``function_call_output`` input item answering it."""
        return self._output(item, self.call(attr(item, "name"), attr(item, "arguments")))

    async def atool_result(self, item: ResponseFunctionToolCall | Mapping[str, Any]) -> FunctionCallOutput:
        return self._output(item, await self.acall(attr(item, "name"), attr(item, "arguments")))

    def tool_results(self, turn: Response | Sequence[Any]) -> list[FunctionCallOutput]:
        """Run the response's ``function_call`` items for these tools, in order: input items for the next request
        (with ``previous_response_id``, or appended after the response's output items)."""
        return [self.tool_result(item) for item in self._calls(turn)]

    async def atool_results(self, turn: Response | Sequence[Any]) -> list[FunctionCallOutput]:
        return [await self.atool_result(item) for item in self._calls(turn)]

    def _calls(self, turn: Any) -> list[Any]:
        items = turn if isinstance(turn, Sequence) else attr(turn, "output") or []
        return [item for item in items if attr(item, "type") == "function_call" and self.handles(attr(item, "name"))]

    def _output(self, item: Any, out: ToolOutput) -> FunctionCallOutput:
        call_id = attr(item, "call_id")
        if not self.images or not out.images:
            return {"type": "function_call_output", "call_id": call_id, "output": out.text(NOT_SHOWN)}
        content: list[ResponseInputTextContentParam | ResponseInputImageContentParam] = []
        for part in out.parts:
            if isinstance(part, TextPart):
                content.append({"type": "input_text", "text": part.text})
            elif isinstance(part, ImagePart):
                content.append({"type": "input_image", "image_url": part.data_url})
        return {"type": "function_call_output", "call_id": call_id, "output": list(content)}


def _function(tool_call: Any) -> tuple[str, Any]:
    function = attr(tool_call, "function")
    return attr(function, "name") or "", attr(function, "arguments")


def _tool_message(tool_call: Any, out: ToolOutput, note: str) -> ChatCompletionToolMessageParam:
    return {"role": "tool", "tool_call_id": attr(tool_call, "id"), "content": out.text(note)}
