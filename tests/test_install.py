"""sandlot runs from wherever Python is installed, a virtual environment under /tmp included."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import venv


def test_sandboxes_work_from_a_venv_under_tmp(tmp_path: pathlib.Path) -> None:
    # The venv's prefix is under /tmp, which the sandbox also mounts as its own private /tmp:
    # the Python installation must stay visible (read-only) on top of it.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    # sandlot and its dependencies come from wherever this interpreter finds them: a virtualenv (as after
    # the README's install), a user site or the system. A venv's own "system site" is its base
    # interpreter's, which has no sandlot when the tests themselves run from a venv.
    outer = [entry for entry in sys.path if os.path.basename(entry) in ("site-packages", "dist-packages")
             and os.path.isdir(entry)]
    site_packages = next((env_dir / "lib").glob("python3*/site-packages"))
    (site_packages / "outer_sites.pth").write_text("import site; " + "; ".join(f"site.addsitedir({d!r})" for d in outer))
    code = ("import json, sys\nfrom sandlot import EngineConfig, Sandlot\n"
            "with Sandlot(EngineConfig(preload=(), pool_size=1)) as s:\n"
            "    r = s.execute('import sys, json\\nprint(json.dumps([sys.prefix, sys.executable]))')\n"
            "    print(json.dumps([r.status, r.stdout, r.stderr]))")
    done = subprocess.run([str(env_dir / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    status, stdout, stderr = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == "ok", stderr
    prefix, executable = json.loads(stdout)
    assert prefix == str(env_dir) and sys.prefix != prefix
    assert executable.startswith(str(env_dir))
