"""sandlot tools for Gemini's function calling (the ``google-genai`` SDK).

    from google import genai
    from google.genai import types
    from sandlot.client import Client
    from sandlot.integrations.gemini import GeminiTools

    with Client("http://127.0.0.1:8765") as sandlot, GeminiTools(sandlot) as tools:
        config = types.GenerateContentConfig(tools=tools.definitions())
        response = gemini.models.generate_content(model=..., contents=contents, config=config)
        while response.function_calls:
            contents += [response.candidates[0].content,
                         types.Content(role="user", parts=tools.tool_results(response))]
            response = gemini.models.generate_content(model=..., contents=contents, config=config)

Needs ``google-genai`` (``pip install 'sandlot[gemini]'``). A function response
is ``{"output": text}``, or ``{"error": text}`` when the code failed or the call
was wrong; figures go in its ``parts`` as inline images, which Gemini 3 models
read (``images=False`` for models without multimodal function responses:
figures are then described in a line each).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._core import NOT_SHOWN, SandlotTools, ToolOutput, attr

try:
    from google.genai import types
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("sandlot.integrations.gemini needs the google-genai package: pip install 'sandlot[gemini]'") from exc

__all__ = ["GeminiTools"]

MIME_TYPES = ("image/png", "image/jpeg", "image/webp")
"""Image types Gemini reads in a function response."""
ATTACHED = "[{n}: {description}; attached to this response]"


class GeminiTools(SandlotTools):
    """sandlot tools for ``client.models.generate_content(config=types.GenerateContentConfig(tools=...))``."""

    def function_declarations(self) -> list[types.FunctionDeclaration]:
        """One declaration per tool, its parameters as JSON Schema."""
        return [types.FunctionDeclaration(name=spec.name, description=spec.description, parameters_json_schema=spec.json_schema())
                for spec in self.specs]

    def definitions(self) -> list[types.Tool]:
        """The config's ``tools=``: one ``Tool`` holding the function declarations."""
        return [types.Tool(function_declarations=self.function_declarations())]

    def tool_result(self, call: types.FunctionCall | Mapping[str, Any]) -> types.Part:
        """Run one ``FunctionCall``; the ``function_response`` part answering it."""
        return self._part(call, self.call(attr(call, "name") or "", attr(call, "args")))

    async def atool_result(self, call: types.FunctionCall | Mapping[str, Any]) -> types.Part:
        return self._part(call, await self.acall(attr(call, "name") or "", attr(call, "args")))

    def tool_results(self, turn: types.GenerateContentResponse | types.Content | Sequence[Any]) -> list[types.Part]:
        """Run the turn's function calls to these tools, in order: the parts of the next ``user`` content
        (with the responses for other functions, if any)."""
        return [self.tool_result(call) for call in self._calls(turn)]

    async def atool_results(self, turn: types.GenerateContentResponse | types.Content | Sequence[Any]) -> list[types.Part]:
        return [await self.atool_result(call) for call in self._calls(turn)]

    def _calls(self, turn: Any) -> list[Any]:
        if isinstance(turn, types.GenerateContentResponse):
            items: Sequence[Any] = turn.function_calls or []
        elif isinstance(turn, types.Content):
            items = turn.parts or []
        else:
            items = turn
        calls = [item.function_call if isinstance(item, types.Part) else item for item in items]
        return [call for call in calls if call is not None and self.handles(attr(call, "name") or "")]

    def _part(self, call: Any, out: ToolOutput) -> types.Part:
        shown = [image for image in out.images if self.images and image.mime_type in MIME_TYPES]
        text = out.text(lambda image: ATTACHED if image in shown else NOT_SHOWN)
        parts = [types.FunctionResponsePart(inline_data=types.FunctionResponseBlob(mime_type=image.mime_type,
                                                                                   data=image.to_bytes()))
                 for image in shown]
        response = types.FunctionResponse(id=attr(call, "id"), name=attr(call, "name"),
                                          response={"error" if out.is_error else "output": text}, parts=parts or None)
        return types.Part(function_response=response)
