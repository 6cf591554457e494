"""An execution result as MCP tool-result content, for a model to read.

Text blocks for stdout, stderr, values (an ``execute_result``'s ``text/plain``)
and tracebacks, in the order they happened; an image block for every PNG (or
JPEG, GIF, WebP) figure; short bracketed notes for what a model would
otherwise miss (a limit was hit, output was cut, the interpreter restarted).
The full result, exactly as the HTTP API returns it, is the structured content.
A failed run is still a normal tool result, with ``isError`` set.
"""

from __future__ import annotations

from typing import Any

from mcp.types import CallToolResult, ImageContent, TextContent

from .._bundles import what_to_show
from .._models import DisplayData, ErrorOutput, ExecuteResult, ExecutionResult, StreamOutput

Block = TextContent | ImageContent

MAX_TEXT = 100_000
"""Characters of one text block; the rest is cut with a note (the structured content keeps it all)."""

NO_OUTPUT = "[no output: the code ran without printing anything. print() values, or end the code with an expression to see it]"


def execution_result(result: ExecutionResult) -> CallToolResult:
    return CallToolResult(content=list(result_blocks(result)), structured_content=result.model_dump(mode="json"),
                          is_error=result.status != "ok")


def result_blocks(result: ExecutionResult) -> list[Block]:
    blocks: list[Block] = []
    shown_error = False
    for output in result.outputs:
        if isinstance(output, StreamOutput):
            blocks.append(text(output.text if output.name == "stdout" else "[stderr]\n" + output.text))
        elif isinstance(output, ExecuteResult):
            blocks += bundle_blocks(output.data, prefix=f"Out[{output.execution_count}]: "
                                    if output.execution_count is not None else "")
        elif isinstance(output, DisplayData):
            blocks += bundle_blocks(output.data)
        elif isinstance(output, ErrorOutput):
            shown_error = True
            blocks.append(text("\n".join(output.traceback) or f"{output.ename}: {output.evalue}"))
    if result.error is not None and not shown_error:
        blocks.append(text("\n".join(result.error.traceback) or f"{result.error.ename}: {result.error.evalue}"))
    elif result.status != "ok" and not shown_error:
        blocks.append(text(f"[the run ended with status {result.status!r}]"))
    if result.truncated:
        blocks.append(text("[output truncated: the run printed more than the output limit and the rest was dropped; "
                           "write large results to a file instead]"))
    if result.restarted:
        blocks.append(text("[the session's interpreter was replaced before this cell (the previous one hit a limit or "
                           "crashed): variables and imports from earlier cells are gone; files in the working directory "
                           "are kept]"))
    return blocks or [text(NO_OUTPUT)]


def bundle_blocks(data: dict[str, Any], prefix: str = "") -> list[Block]:
    """One MIME bundle, as ``_bundles.what_to_show`` chooses: an image block, or a text block."""
    shown = what_to_show(data)
    if shown is None:
        return []
    if shown.is_image:
        return [ImageContent(type="image", data=shown.value, mime_type=shown.mime)]
    return [text(prefix + shown.value)]


def text(value: str) -> TextContent:
    if len(value) > MAX_TEXT:
        value = value[:MAX_TEXT] + (f"\n[... {len(value) - MAX_TEXT} more characters cut here; "
                                    "write large output to a file and read it in parts]")
    return TextContent(type="text", text=value)
