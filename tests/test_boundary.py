"""The trust boundary: the in-sandbox package imports only the standard library."""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys

import sandlot_runtime

RUNTIME_DIR = pathlib.Path(sandlot_runtime.__file__).parent


def test_runtime_sources_import_only_stdlib_and_themselves() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__", "sandlot_runtime"}
    for path in RUNTIME_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [] if node.level else [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_runtime_loads_without_site_packages() -> None:
    # -I -S: no site-packages at all; every runtime module must still import.
    code = (f"import sys, json; sys.path.insert(0, {str(RUNTIME_DIR.parent)!r})\n"
            "import sandlot_runtime.zygote, sandlot_runtime.kernel, sandlot_runtime.execute\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert loaded - set(sys.stdlib_module_names) - {"sandlot_runtime", "__main__"} == set()
