"""How the model asks to run code: a native `python` tool, or fenced code blocks.

The tool format is OpenAI's function calling. The code-block format is the
CodeAct convention: the model writes ```python blocks in its reply; each is
run, in order, and the output comes back as the next user message.
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

TOOL_SYSTEM_PROMPT = (
    "You can run Python code with the `python` tool. The code runs in a persistent sandboxed session: state "
    "carries over between calls. Use it whenever a question needs computation or checking, then answer the user "
    "in plain language with the result."
)

CODE_BLOCK_SYSTEM_PROMPT = (
    "You can run Python code. To run code, reply with a single fenced code block:\n"
    "```python\nprint(2 + 2)\n```\n"
    "It runs in a persistent sandboxed session (state carries over) and you get the output back in the next "
    "message. Use print() to see values. When you know the answer, reply in plain language with no code block."
)

_FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


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
