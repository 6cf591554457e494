"""The public surface: a sorted __all__ of things that exist, and the decision logic for isolation."""

from __future__ import annotations

import pytest

import sandlot
from sandlot.engine.host import HostSupport, choose_isolation


def test_all_is_sorted_and_complete() -> None:
    assert sandlot.__all__ == sorted(sandlot.__all__)
    for name in sandlot.__all__:
        assert getattr(sandlot, name).__module__.startswith("sandlot")
        assert getattr(sandlot, name).__doc__


def support(**changes: object) -> HostSupport:
    full = dict(root=True, namespaces=True, cgroup_controllers={"memory": "v1", "pids": "v1"}, seccomp=True,
                seccomp_library=True, landlock_abi=7, kernel="6.x")
    full.update(changes)
    return HostSupport(**full)  # type: ignore[arg-type]


def test_full_isolation_where_available() -> None:
    assert choose_isolation("auto", support()) == "namespaces"
    assert choose_isolation("strict", support()) == "namespaces"


def test_strict_refuses_without_namespaces() -> None:
    with pytest.raises(sandlot.SetupError, match="namespaces"):
        choose_isolation("strict", support(namespaces=False))


def test_auto_degrades_to_landlock_but_never_to_nothing() -> None:
    assert choose_isolation("auto", support(root=False)) == "landlock"
    with pytest.raises(sandlot.SetupError):
        choose_isolation("auto", support(root=False, landlock_abi=0))
