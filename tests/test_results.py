"""What a run returns: Jupyter-shaped outputs, rich results, errors as data."""

from __future__ import annotations

import base64

from sandlot import Sandlot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_print_gives_ok_and_stdout(sl: Sandlot) -> None:
    result = sl.execute("print(1)")
    assert result.status == "ok"
    assert result.stdout == "1\n"
    assert result.outputs[0].model_dump() == {"output_type": "stream", "name": "stdout", "text": "1\n"}
    assert result.id.startswith("exe_")
    assert result.execution_count == 1
    assert result.duration_ms > 0
    assert result.usage.cpu_ms >= 0
    assert result.usage.peak_memory_bytes and result.usage.peak_memory_bytes > 0
    assert result.truncated is False


def test_outputs_keep_their_order(sl: Sandlot) -> None:
    result = sl.execute("import sys\nprint('a')\nprint('b', file=sys.stderr)\ndisplay(3)\nprint('c')\n4")
    kinds = [(o.output_type, getattr(o, "name", None)) for o in result.outputs]
    assert kinds == [("stream", "stdout"), ("stream", "stderr"), ("display_data", None), ("stream", "stdout"),
                     ("execute_result", None)]
    assert result.stdout == "a\nc\n"
    assert result.stderr == "b\n"


def test_trailing_expression_is_execute_result(sl: Sandlot) -> None:
    result = sl.execute("x = 20\nx * 2 + 2")
    (output,) = result.outputs
    assert output.output_type == "execute_result"
    assert output.data == {"text/plain": "42"}
    assert output.execution_count == 1


def test_trailing_semicolon_and_none_show_nothing(sl: Sandlot) -> None:
    assert sl.execute("1 + 1;").outputs == []
    assert sl.execute("None").outputs == []


def test_repr_methods_are_honoured(sl: Sandlot) -> None:
    code = (
        "class Rich:\n"
        "    def _repr_html_(self): return '<b>rich</b>'\n"
        "    def _repr_markdown_(self): return '**rich**'\n"
        "    def _repr_png_(self): return b'\\x89PNG\\r\\n\\x1a\\nfake'\n"
        "    def __repr__(self): return 'Rich()'\n"
        "Rich()"
    )
    data = sl.execute(code).outputs[0].data
    assert data["text/html"] == "<b>rich</b>"
    assert data["text/markdown"] == "**rich**"
    assert base64.b64decode(data["image/png"]).startswith(PNG_SIGNATURE)
    assert data["text/plain"] == "Rich()"


def test_dataframe_gives_html_and_text(sl: Sandlot) -> None:
    data = sl.execute("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})").outputs[0].data
    assert "<table" in data["text/html"]
    assert "a" in data["text/plain"] and "b" in data["text/plain"]


def test_matplotlib_figure_is_a_png(sl: Sandlot) -> None:
    result = sl.execute("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')")
    figures = [o for o in result.outputs if o.output_type == "display_data"]
    assert len(figures) == 1
    assert base64.b64decode(figures[0].data["image/png"]).startswith(PNG_SIGNATURE)
    assert figures[0].data["text/plain"].startswith("<Figure")


def test_plt_show_displays_once(sl: Sandlot) -> None:
    result = sl.execute("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\nprint('after')")
    kinds = [o.output_type for o in result.outputs]
    assert kinds == ["display_data", "stream"]


def test_exception_is_data_with_a_clean_traceback(sl: Sandlot) -> None:
    result = sl.execute("def f():\n    raise ValueError('bad value')\nf()")
    assert result.status == "error"
    assert result.error is not None
    assert result.error.ename == "ValueError"
    assert result.error.evalue == "bad value"
    text = "\n".join(result.error.traceback)
    assert "<cell-1>" in text and "raise ValueError" in text
    assert "sandlot_runtime" not in text
    assert result.outputs[-1].output_type == "error"


def test_syntax_error_is_data(sl: Sandlot) -> None:
    result = sl.execute("def broken(:\n    pass")
    assert result.status == "error"
    assert result.error is not None and result.error.ename == "SyntaxError"
    assert "sandlot_runtime" not in "\n".join(result.error.traceback)


def test_system_exit_is_data(sl: Sandlot) -> None:
    result = sl.execute("import sys\nsys.exit(3)")
    assert result.status == "error"
    assert result.error is not None and result.error.ename == "SystemExit"


def test_top_level_await(sl: Sandlot) -> None:
    result = sl.execute("import asyncio\nawait asyncio.sleep(0.01)\n'awaited'")
    assert result.outputs[0].data["text/plain"] == "'awaited'"


def test_subprocess_output_is_captured(sl: Sandlot) -> None:
    result = sl.execute("import subprocess\nsubprocess.run(['echo', 'from a child'], check=True)")
    assert result.status == "ok"
    assert result.stdout == "from a child\n"


def test_unicode_round_trips(sl: Sandlot) -> None:
    result = sl.execute("print('héllo ✓ 🎉')\n'日本'")
    assert result.stdout == "héllo ✓ 🎉\n"
    assert result.outputs[-1].data["text/plain"] == "'日本'"


def test_env_and_files_are_given_to_the_run(sl: Sandlot) -> None:
    result = sl.execute("import os\nprint(os.environ['GREETING'], open('data/in.csv').read())",
                        env={"GREETING": "hi"}, files={"data/in.csv": b"a,b\n1,2\n"})
    assert result.status == "ok", result
    assert result.stdout == "hi a,b\n1,2\n\n"


def test_numpy_is_preloaded_and_works(sl: Sandlot) -> None:
    result = sl.execute("import sys\nprint('numpy' in sys.modules)\nimport numpy as np\nint(np.arange(10).sum())")
    assert result.stdout == "True\n"
    assert result.outputs[-1].data["text/plain"] == "45"


def test_sys_argv_is_that_of_code_without_a_script(sl: Sandlot) -> None:
    # Not the zygote's command line (it was ['-c', '9']): as `python` gives code that names no script.
    assert sl.execute("import sys\nsys.argv").outputs[0].data["text/plain"] == "['']"
