"""How the model asks to run code: a native `python` tool, or fenced code blocks.

The tool format is OpenAI's function calling. The code-block format is the
CodeAct convention: the model writes ```python blocks in its reply; each is
run, in order, and the output comes back as the next user message. What the
model is told about either is in ``prompts``.
"""

from __future__ import annotations

import json
import re
from typing import Any

TOOL_NAME = "python"

PYTHON_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": (
            "Run Python 3 code in a persistent, sandboxed session (like a Jupyter notebook): variables, imports "
            "and files in the working directory carry over between calls. numpy, pandas and matplotlib are "
            "available; there is no network. You get back stdout, stderr, the value of the last expression, "
            "figures, and errors. Use print() for what you need to see."
        ),
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python code to run."}},
            "required": ["code"],
        },
    },
}

_FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_OUTPUT_FENCE = re.compile(r"```[ \t]*output[ \t]*\n", re.IGNORECASE)


def python_tool(tools_text: str = "") -> dict[str, Any]:
    """The `python` tool, its description extended with the host tools the code can call."""
    if not tools_text:
        return PYTHON_TOOL
    function = {**PYTHON_TOOL["function"], "description": PYTHON_TOOL["function"]["description"] + "\n\n" + tools_text}
    return {**PYTHON_TOOL, "function": function}


def describe_host_tools(signatures: list[str]) -> str:
    """How the model learns of host tools: Python stubs it can import, and how to call many at once."""
    if not signatures:
        return ""
    stubs = "\n\n".join(signatures)
    return (
        "Your code can call these host tools as ordinary Python functions: import them with "
        "`from sandlot.tools import <name>`. Each call runs on the host and returns its result; prefer doing "
        "many calls in one piece of code (loops, filtering, `parallel_map(tool, items)` to call a tool for many "
        "items at once) and print only what you need, instead of one step per call. A failed call raises "
        "`ToolError`.\n```python\n" + stubs + "\n```"
    )


def code_blocks(text: str | None) -> list[str]:
    """The python code blocks in an assistant reply, in order (unlabelled fences count as python)."""
    if not text:
        return []
    blocks = []
    for match in _FENCE.finditer(text):
        code = match.group(1).strip("\n")
        if code.strip():
            blocks.append(code)
    return blocks


def code_turn(text: str | None) -> tuple[str, list[str]]:
    """A code-block reply up to where the model starts imagining the output, and the code in that part.

    Coder models often go on after their code block with an ```output block they made up, and an
    answer from it. Whatever follows the first ```output fence after a code block is cut: the real
    output comes next, and the model must not read its guess as a fact.
    """
    if not text:
        return "", []
    first = _FENCE.search(text)
    if first is not None and (imagined := _OUTPUT_FENCE.search(text, first.end())) is not None:
        text = text[:imagined.start()].rstrip()
    return text, code_blocks(text)


def tool_call_code(arguments: str) -> str:
    """The code in a `python` tool call's arguments (a JSON object; some models send bare code)."""
    try:
        parsed = json.loads(arguments)
    except (TypeError, ValueError):
        return arguments
    if isinstance(parsed, dict):
        code = parsed.get("code", "")
        return code if isinstance(code, str) else json.dumps(code)
    return parsed if isinstance(parsed, str) else arguments
