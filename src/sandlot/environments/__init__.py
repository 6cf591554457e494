"""Named environments: which Python a run gets, what its zygote preloads, what it may import.

    EnvironmentRegistry   the default environment and the named ones, resolved and probed (registry.py)
    Environment           one of them
    parse_environments    the one-line ``--environment NAME=PYTHON[:opt=v]...`` form (oneline.py)
    build_environment     ``sandlot env build``: a virtualenv from a requirements file (build.py)

The engine keeps one zygote and warm pool per environment (``engine.lanes``); the module policy is
enforced inside the sandbox by ``sandlot_runtime.module_policy``.
"""

from __future__ import annotations

from .build import build_environment
from .interpreter import InterpreterInfo
from .oneline import parse_environment, parse_environments
from .registry import Environment, EnvironmentRegistry

__all__ = [
    "Environment",
    "EnvironmentRegistry",
    "InterpreterInfo",
    "build_environment",
    "parse_environment",
    "parse_environments",
]
