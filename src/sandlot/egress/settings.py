"""The operator's egress settings: ``[engine.egress]`` in the TOML file, ``--egress-*`` on the command line."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .policy import parse_entry

MiB = 1 << 20


class EgressSettings(BaseModel):
    """Off unless ``allow`` names something. Every cap holds per run (a one-shot run, or one session cell)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow: tuple[str, ...] = Field((), description="Destinations sandboxed code may reach through the egress proxy, "
                                   "for a request that asks (`network`): domain names, `*.domain`, `host:port`, "
                                   "addresses and CIDRs (docs/egress.md). Empty: no network at all.")
    headers: tuple[str, ...] = Field((), description="Credential injection: `DEST=Header-Name:env:VARIABLE`, a "
                                     "header the proxy adds to plain-HTTP requests to DEST, its value from the "
                                     "server's environment (never seen by sandboxes).")
    max_connections: int = Field(64, ge=1, description="Connections through the proxy per run.")
    max_bytes: int = Field(256 * MiB, ge=1024, description="Bytes through the proxy per run, both directions.")
    idle_timeout: float = Field(60.0, gt=0, description="Seconds a proxied connection may sit without traffic.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds the proxy waits to connect to a destination.")
    index_url: str | None = Field(None, description="The package index `pip` uses in sandboxes with network "
                                  "(PIP_INDEX_URL); unset: pip's default (pypi.org).")
    wheel_cache: bool = Field(True, description="Keep wheels `pip` downloads over plain HTTP from the operator's "
                              "index (an http:// `index_url`; none: nothing is kept) in a host cache that sandboxes "
                              "with network read (read-only), so a second install needs no download.")

    @field_validator("allow")
    @classmethod
    def _entries_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_entry(text)
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.allow)
