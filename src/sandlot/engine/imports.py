"""Whether a piece of code needs more than the standard library, as far as its text tells.

One-shot runs whose code imports nothing but the standard library are served by the lean zygote (``lanes``,
``Engine.execute``): it preloads nothing, so its sandboxes fork, fault in and exit with a fraction of the
default zygote's pages. The answer only picks a zygote, never what a run may do: code that imports something
after all (through ``__import__``, ``importlib``, ``exec`` of a string) still imports it in the lean sandbox,
only as slowly as a plain interpreter would. So the test errs towards "no" wherever the text is unclear.
"""

from __future__ import annotations

import ast
import sys

STANDARD_LIBRARY = frozenset(sys.stdlib_module_names)
DYNAMIC = frozenset({"__import__", "import_module", "importlib", "exec", "eval", "compile", "runpy", "run_module",
                     "run_path", "pkgutil", "zipimport", "builtins", "__builtins__", "__loader__", "__spec__"})
"""Names through which code can import by a string: code that mentions any of them goes to the default zygote."""
MAX_PARSED = 16 * 1024
"""Longer code is not parsed to find out (``ast.parse`` holds the event loop: ~0.2 ms for 1 KB, ~29 ms for 64 KB
measured here under load): it goes to the default zygote."""
_WORDS = ("import", "exec", "eval", "compile", "builtins", "run_", "__loader__", "__spec__")


def standard_library_only(code: str, *, preloaded: frozenset[str]) -> bool:
    """True when every module ``code`` imports is in the standard library and not one of ``preloaded`` (which
    the lean zygote does not have), and it names nothing that imports by a string. Code that does not parse
    is False: the default zygote reports its syntax error as ever."""
    if not any(word in code for word in _WORDS):
        return True  # print(1), arithmetic, loops: no parse needed
    if len(code) > MAX_PARSED:
        return False
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.partition(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module is None:
                return False  # relative: a package of the workspace's, not the standard library
            roots = [node.module.partition(".")[0]]
        elif isinstance(node, ast.Name):
            if node.id in DYNAMIC:
                return False
            continue
        elif isinstance(node, ast.Attribute):
            if node.attr in DYNAMIC:
                return False
            continue
        else:
            continue
        if any(root not in STANDARD_LIBRARY or root in preloaded or root in DYNAMIC for root in roots):
            return False
    return True
