"""sandlot as tools for the big function-calling APIs and for LangChain.

One module per provider, each importable without the others' SDKs::

    sandlot.integrations.openai      OpenAIChatTools, OpenAIResponsesTools   (no SDK needed at runtime)
    sandlot.integrations.anthropic   AnthropicTools                          (no SDK needed at runtime)
    sandlot.integrations.gemini      GeminiTools                             (needs google-genai: sandlot[gemini])
    sandlot.integrations.langchain   RunPythonTool, SessionPythonTool        (needs langchain-core: sandlot[langchain])

Each provider class is a ``SandlotTools`` (the provider-neutral core, usable on
its own with any other API) with the same verbs: ``definitions()`` for the
request's ``tools``, ``tool_result(call)`` for one tool call the model made and
``tool_results(turn)`` for all of a model turn's calls to these tools, each in
that provider's own shapes; ``a``-prefixed twins with an ``AsyncClient``.
See docs/integrations/.
"""

from __future__ import annotations

from ._core import (
    RUN_IN_SESSION,
    RUN_PYTHON,
    TOOL_NAMES,
    CodeArgs,
    ImagePart,
    Part,
    SandlotTools,
    TextPart,
    ToolName,
    ToolOutput,
    ToolSpec,
)

__all__ = [
    "CodeArgs",
    "ImagePart",
    "Part",
    "RUN_IN_SESSION",
    "RUN_PYTHON",
    "SandlotTools",
    "TOOL_NAMES",
    "TextPart",
    "ToolName",
    "ToolOutput",
    "ToolSpec",
]
