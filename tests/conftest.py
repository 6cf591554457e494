"""Shared fixtures: real engines (real zygotes, real sandboxes) and the leak check."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sandlot import EngineConfig, Limits, Sandlot
from sandlot._cgroups import detect
from sandlot._config import MiB, default_state_dir

# A secret the server process holds; no sandbox may ever see it.
HOST_SECRET = "sandlot-host-secret-7f3a9c"
os.environ["SANDLOT_TEST_HOST_SECRET"] = HOST_SECRET

TIGHT_LIMITS = Limits(timeout=15, cpu_time=2, memory=256 * MiB, pids=32, file_size=8 * MiB,
                      workspace_size=16 * MiB, tmp_size=16 * MiB, output_size=64 * 1024, rich_output_size=MiB)


def leftovers() -> list[str]:
    """Anything of ours still around: processes, mounts, cgroups, state directories."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "sandlot_runtime" in cmdline:
                found.append(f"process {entry}: {cmdline[:120]}")
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if f"sandlot-{me}-" in line]
    for hierarchy in detect().values():
        found += [f"cgroup {hierarchy.own_dir}/{name}" for name in os.listdir(hierarchy.own_dir)
                  if name.startswith(f"sandlot-{me}-")]
    state = default_state_dir()
    if os.path.isdir(state):
        found += [f"state dir {state}/{name}" for name in os.listdir(state) if name.startswith(f"sandlot-{me}-")]
    return found


@pytest.fixture(scope="session", autouse=True)
def no_leftovers() -> Iterator[None]:
    """After every engine of the run has closed, nothing of ours may be left."""
    yield
    assert leftovers() == []


@pytest.fixture(scope="session")
def sl() -> Iterator[Sandlot]:
    """The default configuration, as `sandlot serve` would run it."""
    with Sandlot(EngineConfig()) as engine:
        yield engine


@pytest.fixture(scope="session")
def tight() -> Iterator[Sandlot]:
    """Small limits, so limit tests are quick; nothing preloaded."""
    with Sandlot(EngineConfig(preload=(), limits=TIGHT_LIMITS, pool_size=2)) as engine:
        yield engine
