"""The engine's egress: the operator's policy, the injected headers, the wheel cache, and a proxy per sandbox."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence

from .._errors import InvalidRequestError, SetupError
from .._models import NetworkConnection
from . import netns
from .credentials import parse_header_rules
from .policy import Entry, Policy, parse_entry
from .proxy import PROXY_PORT, SandboxProxy
from .settings import EgressSettings
from .wheels import WheelCache

PACKAGES_DIR = ".packages"
"""Where ``pip install`` puts packages in a sandbox with network: under the workspace, so they stay with a
session's files and count against its quota."""


class Egress:
    """Decides whether a request may have network, and serves each such sandbox its proxy."""

    def __init__(self, settings: EgressSettings, cache_dir: str, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        try:
            self.policy = Policy.parse(settings.allow)
            self.headers = parse_header_rules(settings.headers, env)
        except ValueError as exc:
            raise SetupError(str(exc)) from None
        self.wheel_cache: WheelCache | None = None
        if settings.enabled and settings.wheel_cache:
            try:
                self.wheel_cache = WheelCache(os.path.join(cache_dir, "wheels"), settings.index_url)
            except OSError as exc:
                raise SetupError(f"the wheel cache cannot be made in {cache_dir}: {exc.strerror} "
                                 "(set cache_dir, or wheel_cache = false)") from None
        self.on_connection: list[Callable[[NetworkConnection], None]] = []

    def __repr__(self) -> str:
        return f"<Egress allow={list(self.settings.allow)} headers={len(self.headers)}>"

    def policy_for(self, asked: Sequence[str] | None, *, isolated_network: bool) -> Policy:
        """The policy of a request that asks for network (``asked``: its allow list, None for everything the
        operator allows); ``InvalidRequestError`` (400) when it may not have it."""
        if not self.settings.enabled:
            raise InvalidRequestError("this server allows no network: egress is off (the operator sets "
                                      "--egress-allow, docs/egress.md)")
        if not isolated_network:
            raise InvalidRequestError("network is refused in degraded isolation: sandboxes share the host's "
                                      "network there, so the egress proxy could not be the only way out")
        return self.policy.narrowed(asked)

    def kept(self, granted: Sequence[str], *, isolated_network: bool) -> tuple[Policy | None, list[str]]:
        """What a saved session's policy (``granted``, its entries' text) keeps under the operator's allow list
        now, and the entries it loses: those no operator entry covers any more, every one when egress is off or
        the isolation is degraded. Everything lost: None (no network at all). Never a 400: the session is kept."""
        if not self.settings.enabled or not isolated_network:
            return None, list(granted)
        kept: list[Entry] = []
        dropped: list[str] = []
        for text in granted:
            try:
                entry = parse_entry(text)
            except ValueError:
                dropped.append(text)
                continue
            if any(own.covers(entry) for own in self.policy.entries):
                kept.append(entry)
            else:
                dropped.append(text)
        if dropped and not kept:
            return None, dropped
        return Policy(tuple(kept)), dropped

    def sandbox_env(self, workspace: str) -> dict[str, str]:
        """The variables a sandbox with network starts with: the proxy for every standard tool, pip's target."""
        proxy = f"http://127.0.0.1:{PROXY_PORT}"
        packages = os.path.join(workspace, PACKAGES_DIR)
        env = {name: proxy for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
        env.update({"PYTHONPATH": packages, "PIP_TARGET": packages, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                    "PIP_CACHE_DIR": "/tmp/pip-cache", "PIP_NO_INPUT": "1", "SANDLOT_PACKAGES": packages})
        if self.settings.index_url:
            env["PIP_INDEX_URL"] = self.settings.index_url
        if self.wheel_cache is not None:
            env["PIP_FIND_LINKS"] = self.wheel_cache.directory
        return env

    def sandbox_ro_dirs(self) -> tuple[str, ...]:
        return (self.wheel_cache.directory,) if self.wheel_cache is not None else ()

    async def attach(self, pidfd: int, policy: Policy) -> SandboxProxy:
        """A proxy serving the sandbox ``pidfd`` names, listening in its network namespace."""
        listener = await asyncio.to_thread(netns.listen_in, pidfd, PROXY_PORT)
        proxy = SandboxProxy(policy, self.settings, self.headers, self.wheel_cache, self._noted)
        try:
            await proxy.serve(listener)
        except BaseException:
            listener.close()
            raise
        return proxy

    def _noted(self, record: NetworkConnection) -> None:
        for callback in self.on_connection:
            callback(record)
