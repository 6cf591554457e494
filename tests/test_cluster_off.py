"""Without ``--ray`` nothing of cluster mode loads: ``import sandlot`` and a normal server never import Ray."""

from __future__ import annotations

import subprocess
import sys


def _imports_ray(script: str) -> bool:
    code = f"import sys\n{script}\nprint('ray' in sys.modules or any(m.startswith('ray.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_import_sandlot_does_not_import_ray() -> None:
    assert not _imports_ray("import sandlot, sandlot.server, sandlot.cli, sandlot.engine")


def test_a_normal_server_does_not_import_ray() -> None:
    script = ("from sandlot.server import ServerConfig, create_app\n"
              "from fastapi.testclient import TestClient\n"
              "with TestClient(create_app(ServerConfig())) as c:\n"
              "    assert c.post('/v1/execute', json={'code': 'print(1)'}).json()['stdout'] == '1\\n'\n"
              "    assert c.get('/v1/cluster').status_code == 404\n")
    assert not _imports_ray(script)


def test_the_cluster_package_loads_ray_only_when_its_engine_is_asked_for() -> None:
    assert not _imports_ray("import sandlot.cluster, sandlot.cluster.ray_env")
    assert _imports_ray("from sandlot.cluster import ClusterEngine")
