"""The environments a server offers: the default one (the server's own Python) and the named ones.

``EnvironmentRegistry`` resolves the config into ``Environment`` objects, asks each named
interpreter about itself once (at engine start: a bad path is a ``SetupError`` then, not at the
first request), and answers the questions the faces ask: is this name known (a ``400`` naming the
known ones if not), and what does ``GET /v1/environments`` show.
"""

from __future__ import annotations

import platform
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from .._config import DEFAULT_ENVIRONMENT, EngineConfig, Limits, ModulePolicy
from .._errors import InvalidRequestError, SetupError
from . import interpreter
from .interpreter import InterpreterInfo

DISTRIBUTIONS_TTL = 30.0
"""Seconds a listing of an environment's distributions is reused: each one is a host process, and any client may
ask (an operator who installs something sees it within this long)."""


@dataclass
class Environment:
    """One environment, resolved: what its zygote is started with and what a run in it gets by default."""

    name: str
    python: str
    preload: tuple[str, ...]
    pool_size: int
    pool_max_size: int | None
    """The most its pool grows to under bursts (None: the engine's rule, ``engine.pool_max_size``)."""
    limits: Limits
    modules: ModulePolicy
    default: bool
    info: InterpreterInfo | None = None
    """The interpreter's answers (named environments, once probed); the default one is the server's own."""

    @property
    def version(self) -> str:
        return self.info.version if self.info is not None else platform.python_version()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "python": self.version, "executable": self.python, "preload": list(self.preload),
                "default": self.default, "pool_size": self.pool_size,
                "modules": {"deny": list(self.modules.deny),
                            "allow": None if self.modules.allow is None else list(self.modules.allow)}}


class EnvironmentRegistry:
    """Every environment of one engine, by name; the default one first."""

    def __init__(self, config: EngineConfig) -> None:
        self.default = Environment(name=DEFAULT_ENVIRONMENT, python=sys.executable, preload=config.preload,
                                   pool_size=config.pool_size, pool_max_size=config.pool_max_size, limits=config.limits,
                                   modules=config.modules, default=True)
        self._all: dict[str, Environment] = {DEFAULT_ENVIRONMENT: self.default}
        self._distributions: dict[str, tuple[float, list[dict[str, str]]]] = {}
        self._distributions_lock = threading.Lock()
        for name, spec in config.environments.items():
            # The fields its [limits] table names, over [engine.limits]: the others are the server's defaults.
            limits = config.limits if spec.limits is None else Limits.model_validate(
                {**config.limits.model_dump(), **spec.limits.model_dump(include=spec.limits.model_fields_set)})
            over = [field for field in Limits.model_fields
                    if getattr(config.max_limits, field) is not None and getattr(limits, field) is not None
                    and getattr(limits, field) > getattr(config.max_limits, field)]
            if over:
                raise SetupError(f"environment {name!r}: its limits {', '.join(over)} are above [engine.max_limits]")
            self._all[name] = Environment(name=name, python=spec.python, preload=spec.preload,
                                          pool_size=spec.pool_size, pool_max_size=spec.pool_max_size, limits=limits,
                                          modules=spec.modules, default=False)

    def __repr__(self) -> str:
        return f"<EnvironmentRegistry {', '.join(self._all)}>"

    def __len__(self) -> int:
        return len(self._all)

    @property
    def names(self) -> list[str]:
        return list(self._all)

    def named(self) -> list[Environment]:
        """The environments beside the default one."""
        return [env for env in self._all.values() if not env.default]

    def probe(self) -> None:
        """Ask every named interpreter about itself (short host processes, no zygote): ``SetupError`` names
        the environment whose interpreter is missing or unfit."""
        for env in self.named():
            try:
                env.python = interpreter.resolve_python(env.python)
                env.info = interpreter.probe(env.python)
                missing = interpreter.missing_modules(env.python, list(env.preload))
                if missing:
                    raise SetupError(f"{env.python} cannot import {', '.join(missing)} (its preload): install it "
                                     "there, or leave it out of preload")
            except SetupError as exc:
                raise SetupError(f"environment {env.name!r}: {exc}") from None

    def get(self, name: str | None) -> Environment:
        """The environment called ``name`` (None: the default); unknown is a ``400`` naming the known ones."""
        if name is None:
            return self.default
        env = self._all.get(name)
        if env is None:
            raise InvalidRequestError(f"unknown environment {name!r}; this server has: {', '.join(self._all)}")
        return env

    def distributions(self, env: Environment) -> list[dict[str, str]]:
        """What ``env`` has installed, asked at most every ``DISTRIBUTIONS_TTL`` seconds (one asker at a time)."""
        with self._distributions_lock:
            cached = self._distributions.get(env.name)
            if cached is not None and time.monotonic() - cached[0] < DISTRIBUTIONS_TTL:
                return cached[1]
            found = interpreter.distributions(env.python)
            self._distributions[env.name] = (time.monotonic(), found)
            return found

    def describe(self, *, distributions: bool = False) -> list[dict[str, Any]]:
        """What ``GET /v1/environments`` lists; with ``distributions``, what each has installed (a host
        process per environment)."""
        found = []
        for env in self._all.values():
            described = env.describe()
            if distributions:
                described["distributions"] = self.distributions(env)
            found.append(described)
        return found
