"""What the model sees of a run: its output, within a budget, and one line of advice when it helps.

The output is what a notebook would show: stdout, stderr, the value of a trailing expression (the
runtime returns it as an ``execute_result``), a mention of figures, the error's last traceback
frames. Each part is cut to fit the budget, keeping its head and tail and saying how much was left
out. Then, where the run needs the model to act differently, one line of advice (a *hint*): print
the result when nothing was printed; compute it when the code only printed a value written into it;
copy all of a list of numbers the question gives when the code's copy of it lacks some; reduce
the values to one, if one is wanted, when it printed a pandas Series of several; a faster method
after a timeout; less memory after a memory kill; what raised, and where, after an error
(the import to add, when the name is a standard module's; what files there are, when the
code looked for one; the names a module has that are closest to one it lacks, as the session's own
environment has them).

There is no status banner: a small model copies whatever framing it is shown into its answer, so
the output is shown bare (in the code-block format inside the ```output fence coder models are
trained on) and sandlot's own words are only the hint, which the guards can recognise.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .._models import ExecutionResult
from . import prompts, transcription

_CELL_FRAME = re.compile(r'File "<cell-\d+>", line (\d+), in (\S+)')
_UNDEFINED = re.compile(r"name '(\w+)' is not defined")
_MISSING = re.compile(r"('[^']*')\s*$")  # the file named at the end of an OSError's message
_NO_ATTRIBUTE = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")
_CANNOT_IMPORT = re.compile(r"cannot import name '(\w+)' from '([\w.]+)'")
_SERIES_END = re.compile(r"(?:Name: .*, )?(?:Length: (\d+), )?dtype: \w+")  # the last line of a printed Series


@dataclass(frozen=True)
class Observation:
    """One run, as the model is shown it."""

    output: str
    """What the run showed (``prompts.NO_OUTPUT`` if nothing)."""
    hint: str = ""
    """sandlot's one line of advice, or empty."""
    value: str = ""
    """What a successful run printed or returned, whitespace-normalised (empty for a failed or silent run):
    what the repetition guard compares and the final answer falls back on."""

    def text(self, fenced: bool) -> str:
        """The message content: the output (fenced for the code-block format), then the hint."""
        shown = prompts.output_block(self.output) if fenced else self.output
        return f"{shown}\n{self.hint}" if self.hint else shown


def observe(result: ExecutionResult, code: str, budget: int, traceback_frames: int, timeout: float,
            files: Sequence[str] | None = None, names: Sequence[str] | None = None,
            given: Sequence[Counter[Fraction]] = ()) -> Observation:
    """The observation of running ``code``, ``budget`` characters at most (hint included, as far as a
    cut output can shrink); ``timeout`` is the run's time limit in seconds, ``files`` what the
    working directory holds (wanted after a FileNotFoundError: ``wants_files``), ``names`` the
    module's names closest to the one it lacks (after ``missing_name``), and ``given`` the number
    lists of the user's messages (``transcription``), for the hint."""
    parts = []
    if result.stdout:
        parts.append(result.stdout.rstrip("\n"))
    if result.stderr:
        parts.append("stderr:\n" + result.stderr.rstrip("\n"))
    for output in result.outputs:
        if output.output_type == "execute_result":
            parts.append(str(output.data.get("text/plain", "")))
    images = sum(1 for o in result.outputs if o.output_type == "display_data" and "image/png" in o.data)
    if images:
        parts.append(f"[{images} figure{'s' if images > 1 else ''} produced]")
    if result.error is not None and result.status == "error":
        parts.append(_last_frames(result.error.traceback, traceback_frames) or
                     f"{result.error.ename}: {result.error.evalue}")
    parts = [part for part in parts if part]
    hint = _hint(result, code, bool(parts), timeout, files, names, given)
    room = max(budget - len(hint) - 40, 100)  # the notes, the fence and the line breaks take the 40
    shown = _fit("\n".join(parts), room) if parts else prompts.NO_OUTPUT
    value = " ".join(shown.split()) if parts and result.status == "ok" else ""
    if result.restarted:
        shown = prompts.RESTARTED_NOTE + "\n" + shown
    if result.truncated:
        shown += "\n" + prompts.TRUNCATED_NOTE
    return Observation(shown, hint, value)


def missing_name(result: ExecutionResult) -> tuple[str, str] | None:
    """The module and the name the code wanted of it that it does not have (``math.isprime``,
    ``from math import isprime``), for the hint to say which names it has: looked up by the loop
    inside the session (``name_lookup``), whose environment may not be the host's."""
    if result.status != "error" or result.error is None:
        return None
    if result.error.ename == "AttributeError" and (match := _NO_ATTRIBUTE.search(result.error.evalue)):
        return match.group(1), match.group(2)
    if result.error.ename == "ImportError" and (match := _CANNOT_IMPORT.search(result.error.evalue)):
        return match.group(2), match.group(1)
    return None


def name_lookup(module: str, name: str) -> str:
    """A cell that prints, as JSON, the public names of ``module`` closest to ``name`` (``null`` if the
    module does not import), and leaves no name of its own behind."""
    return (
        "def __sandlot_close_names(module, name):\n"
        "    import difflib, importlib, json\n"
        "    try:\n"
        "        found = dir(importlib.import_module(module))\n"
        "    except Exception:\n"
        "        return print('null')\n"
        "    public = [n for n in found if not n.startswith('_')]\n"
        "    print(json.dumps(difflib.get_close_matches(name, public, n=6, cutoff=0.5)))\n"
        f"__sandlot_close_names({module!r}, {name!r})\n"
        "del __sandlot_close_names\n"
    )


def wants_files(result: ExecutionResult) -> bool:
    """The hint for this result names the files in the working directory (the code looked for one)."""
    return result.status == "error" and result.error is not None and result.error.ename == "FileNotFoundError"


def _hint(result: ExecutionResult, code: str, showed_something: bool, timeout: float,
          files: Sequence[str] | None, names: Sequence[str] | None, given: Sequence[Counter[Fraction]]) -> str:
    if result.status == "timeout":
        return prompts.TIMEOUT_HINT.format(seconds=round(timeout, 1))
    if result.status == "memory":
        return prompts.MEMORY_HINT
    if result.status == "killed":
        return prompts.KILLED_HINT
    if result.status == "error" and result.error is not None:
        if files is not None:  # the code looked for a file: say what is there, and where data can come from
            name = _MISSING.search(result.error.evalue)
            missing = name.group(1) if name else "of that name"
            if files:
                shown = ", ".join(files[:10]) + (", ..." if len(files) > 10 else "")
                return prompts.SOME_FILES.format(name=missing, names=shown)
            return prompts.MISSING_FILE.format(name=missing)
        where = _where(result.error.traceback)
        if result.error.ename == "NameError" and (module := _UNDEFINED.fullmatch(result.error.evalue)) and \
                module.group(1) in sys.stdlib_module_names:  # math.comb(...) without `import math`
            return prompts.MISSING_IMPORT.format(where=where, name=module.group(1))
        if names is not None and (lacking := missing_name(result)):  # math.isprime: say what math has
            if names:
                return prompts.CLOSE_NAMES.format(where=where, module=lacking[0], name=lacking[1],
                                                  names=", ".join(names))
            return prompts.NO_CLOSE_NAMES.format(where=where, module=lacking[0], name=lacking[1])
        if result.error.ename == "KeyError" and _uses_pandas(code):  # a column that is not there
            return prompts.MISSING_COLUMN.format(where=where, evalue=result.error.evalue[:80])
        evalue = result.error.evalue if len(result.error.evalue) <= 120 else result.error.evalue[:120] + "..."
        return prompts.ERROR_HINT.format(ename=result.error.ename, where=where, evalue=evalue or "(no message)")
    if not showed_something:
        return prompts.PRINT_NUDGE
    if _prints_only_literals(code):
        return prompts.LITERAL_HINT
    if copy := transcription.miscopy(code, given):
        foreign = prompts.COPY_FOREIGN.format(count=copy.foreign) if copy.foreign else ""
        return prompts.COPY_HINT.format(kept=copy.kept, given=copy.given, foreign=foreign)
    printed = [result.stdout, *(str(o.data.get("text/plain", "")) for o in result.outputs
                                if o.output_type == "execute_result")]
    if count := max((_series_length(text) for text in printed), default=0):
        return prompts.SERIES_HINT.format(count=count)
    return ""


def _series_length(text: str) -> int:
    """How many values a pandas Series printed as the end of ``text`` holds (0: it does not end in one of
    at least two values). A small model prints a column of products where the question wants their total,
    then answers with the first of them."""
    lines = text.rstrip().splitlines()
    end = _SERIES_END.fullmatch(lines[-1].strip()) if len(lines) >= 3 else None
    if end is None:
        return 0
    count = int(end.group(1)) if end.group(1) else sum(1 for line in lines[:-1] if line.strip() != "...")
    return count if count >= 2 else 0


def _uses_pandas(code: str) -> bool:
    return "pandas" in code or "pd." in code or "DataFrame" in code


def _prints_only_literals(code: str) -> bool:
    """The code is nothing but print() calls of values written into it (``print(89)``): a guess, not a computation."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False

    def literal(node: ast.expr) -> bool:
        if isinstance(node, ast.UnaryOp):
            return literal(node.operand)
        return isinstance(node, ast.Constant)

    return bool(tree.body) and all(
        isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Name)
        and stmt.value.func.id == "print" and all(literal(arg) for arg in stmt.value.args)
        for stmt in tree.body)


def _where(traceback: list[str]) -> str:
    """Where in the model's own code the error was raised: its last frame in the cell."""
    for frame in reversed(traceback):
        if match := _CELL_FRAME.search(frame):
            line, function = match.groups()
            return f" at line {line}" + (f" (in {function})" if function != "<module>" else "")
    return ""


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
    """The exception line and the last ``frames`` frames of a formatted traceback: of the model's own
    code where it has any (the library frames inside pandas or numpy tell a small model nothing)."""
    if not traceback:
        return ""
    frame_lines = [line for line in traceback if line.startswith("  File ")]
    own = [line for line in frame_lines if _CELL_FRAME.search(line)]
    kept = (own or frame_lines)[-frames:]
    tail = traceback[-1]
    header = traceback[0] if traceback[0].startswith("Traceback") else ""
    return "\n".join([header, *kept, tail]).strip()
