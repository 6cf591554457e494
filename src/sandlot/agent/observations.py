"""What the model sees of a run: compact text, within a budget.

stdout, stderr and the value of the last expression, each cut to fit the
budget (keeping the head and the tail, and saying how much was left out); an
error as its last traceback frames; figures as images when the model accepts
them, otherwise as a one-line mention.
"""

from __future__ import annotations

from typing import Any

from .._models import ExecutionResult


def observation_text(result: ExecutionResult, budget: int, traceback_frames: int) -> str:
    parts = [f"[status: {result.status}{' (interpreter restarted, variables lost)' if result.restarted else ''}]"]
    if result.stdout:
        parts.append("stdout:\n" + _fit(result.stdout, budget // 2))
    if result.stderr:
        parts.append("stderr:\n" + _fit(result.stderr, budget // 4))
    for output in result.outputs:
        if output.output_type == "execute_result":
            parts.append("result:\n" + _fit(str(output.data.get("text/plain", "")), budget // 4))
    images = sum(1 for o in result.outputs if o.output_type == "display_data" and "image/png" in o.data)
    if images:
        parts.append(f"[{images} figure{'s' if images > 1 else ''} produced]")
    if result.error is not None and result.status != "ok":
        parts.append("error:\n" + _fit(_last_frames(result.error.traceback, traceback_frames) or
                                       f"{result.error.ename}: {result.error.evalue}", budget // 4))
    if result.truncated:
        parts.append("[the run's output was over the server's limit and was truncated]")
    if len(parts) == 1:
        parts.append("(no output)")
    return "\n".join(parts)


def image_parts(result: ExecutionResult) -> list[dict[str, Any]]:
    """OpenAI image content parts for the run's figures."""
    return [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{o.data['image/png']}"}}
            for o in result.outputs if o.output_type == "display_data" and "image/png" in o.data]


def _fit(text: str, budget: int) -> str:
    if len(text) <= budget:
        return text
    keep = max(budget - 60, 40)
    head, tail = text[: keep * 2 // 3], text[-(keep // 3):]
    return f"{head}\n... [{len(text) - len(head) - len(tail)} characters left out] ...\n{tail}"


def _last_frames(traceback: list[str], frames: int) -> str:
    """The exception line and the last ``frames`` frames of a formatted traceback."""
    if not traceback:
        return ""
    frame_lines = [line for line in traceback if line.startswith("  File ")]
    kept = frame_lines[-frames:]
    tail = traceback[-1]
    header = traceback[0] if traceback[0].startswith("Traceback") else ""
    return "\n".join([header, *kept, tail]).strip()
