"""Evaluation: run one cell of user code the way a Jupyter kernel does.

This module knows nothing about the channel. It takes code and a way to emit
outputs, runs the code in a persistent namespace, and returns how it ended.
The value of a trailing expression becomes an ``execute_result`` (unless the
cell ends with ``;``); exceptions become ``error`` outputs with a traceback
that starts at the user's code; pyplot figures are shown after the cell, or
when ``plt.show()`` is called; top-level ``await`` works.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import inspect
import linecache
import os
import sys
import traceback
from collections.abc import Callable
from types import CodeType, TracebackType
from typing import Any

from . import display, packages

Emit = Callable[[dict[str, Any]], None]
_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))


class TimeLimitExceeded(BaseException):
    """Raised in the cell when a time limit is hit (SIGXCPU: from the kernel at the CPU limit, from
    the host at the wall-clock limit). A BaseException, like KeyboardInterrupt, so that user code's
    ``except Exception`` does not swallow it; reported as ``TimeoutError``, as a one-shot run's is."""


class CellRunner:
    """Runs cells in one namespace, like an IPython shell."""

    def __init__(self, emit: Emit, flush_streams: Callable[[], None],
                 code_finished: Callable[[], None] = lambda: None) -> None:
        self._emit = emit
        self._flush_streams = flush_streams
        self._code_finished = code_finished
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shown_figures: set[int] = set()
        self._show = _make_show(self)
        builtins.display = self.display  # type: ignore[attr-defined]

    def run(self, code: str, execution_count: int) -> tuple[str, dict[str, Any] | None]:
        """Run a cell; returns (status, error) with status ok, error, timeout or memory."""
        self._shown_figures.clear()
        self._patch_pyplot_show()
        filename = f"<cell-{execution_count}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        # Once the user's code has finished, what is left (the result, figures, the
        # reply) is sent in one piece: ``code_finished`` corks the channel.
        packages.add_to_path()  # a sandbox with network: what pip installed is importable
        try:
            body, last = _compile_cell(packages.expand_magics(code), filename)
            self._evaluate(body)
            value = self._evaluate(last) if last is not None else None
            self._code_finished()
            if value is not None and not code.rstrip().endswith(";"):
                self._publish_result(value, execution_count)
        except TimeLimitExceeded:
            self._code_finished()
            return "timeout", self._report(sys.exc_info())
        except MemoryError:
            self._code_finished()
            return "memory", self._report(sys.exc_info())
        except BaseException:  # the user's exception, KeyboardInterrupt and SystemExit included, is data
            self._code_finished()
            return "error", self._report(sys.exc_info())
        finally:
            self._show_open_figures()
        return "ok", None

    def display(self, *objs: Any, raw: bool = False, **_ignored: Any) -> None:
        """IPython's ``display()``: publish each object as ``display_data`` now."""
        for obj in objs:
            metadata: dict[str, Any]
            if raw and isinstance(obj, dict):
                data, metadata = obj, {}
            else:
                data, metadata = display.mime_bundle(obj)
            figure = display.as_matplotlib_figure(obj)
            if figure is not None:
                self._shown_figures.add(id(figure))
            self._publish({"output_type": "display_data", "data": data, "metadata": metadata})

    def _evaluate(self, code: CodeType) -> Any:
        if code.co_flags & inspect.CO_COROUTINE:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(eval(code, self.namespace))
        return eval(code, self.namespace)

    def _publish_result(self, value: Any, execution_count: int) -> None:
        self.namespace["_"] = value
        figure = display.as_matplotlib_figure(value)
        if figure is not None:
            self._shown_figures.add(id(figure))
        data, metadata = display.mime_bundle(value)
        self._publish({"output_type": "execute_result", "execution_count": execution_count,
                       "data": data, "metadata": metadata})

    def _publish(self, output: dict[str, Any]) -> None:
        self._flush_streams()  # earlier prints come first, in order
        self._emit(output)

    def _report(self, exc_info: tuple[Any, Any, Any]) -> dict[str, Any]:
        exc_type, exc, tb = exc_info
        if isinstance(exc, TimeLimitExceeded):
            exc_type, exc = TimeoutError, TimeoutError(_safe_str(exc))
            exc.__traceback__ = tb
        error = {
            "ename": exc_type.__name__,
            "evalue": _safe_str(exc),
            "traceback": _user_traceback(exc_type, exc, tb),
        }
        self._publish({"output_type": "error", **error})
        return error

    def _show_open_figures(self) -> None:
        try:
            figures = display.open_figures()
            for figure in figures:
                if id(figure) not in self._shown_figures:
                    self._publish(display.figure_output(figure))
            display.close_figures(figures)
        except Exception as exc:  # a figure that fails to render is reported, not fatal
            print(f"sandlot: could not render a figure: {exc!r}", file=sys.stderr)

    def _patch_pyplot_show(self) -> None:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None and pyplot.show is not self._show:  # not another runner's either (``kernel.rehearse``)
            setattr(pyplot, "show", self._show)  # noqa: B010 (a module attribute)


def _make_show(runner: CellRunner) -> Callable[..., None]:
    def show(*_args: Any, **_kwargs: Any) -> None:
        """Show open figures now, as Jupyter's inline backend does."""
        runner._show_open_figures()

    return show


def _compile_cell(code: str, filename: str) -> tuple[CodeType, CodeType | None]:
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree = compile(code, filename, "exec", flags | ast.PyCF_ONLY_AST, dont_inherit=True)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        expression = ast.Expression(tree.body.pop().value)
        last = compile(expression, filename, "eval", flags, dont_inherit=True)
    return compile(tree, filename, "exec", flags, dont_inherit=True), last


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


def _user_traceback(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> list[str]:
    """The formatted traceback without the runtime's own frames, wherever they are: the ones that
    ran the cell (before the user's) and the signal handler that raised an interrupt or a timeout
    (after them). They are sandlot's business, and their paths are the host's."""
    try:
        report = traceback.TracebackException(exc_type, exc, tb, compact=True)
        _drop_runtime_frames(report, set())
        return [line.rstrip("\n") for line in report.format()]
    except Exception:
        return [f"{exc_type.__name__}: <unprintable exception>"]


def _drop_runtime_frames(report: traceback.TracebackException, seen: set[int]) -> None:
    if id(report) in seen:
        return
    seen.add(id(report))
    report.stack = traceback.StackSummary.from_list(
        [frame for frame in report.stack if not (frame.filename or "").startswith(_RUNTIME_DIR)])
    for chained in (report.__cause__, report.__context__, *(getattr(report, "exceptions", None) or ())):
        if chained is not None:
            _drop_runtime_frames(chained, seen)
