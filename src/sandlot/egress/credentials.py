"""Credential injection: headers the proxy adds to plain-HTTP requests to one destination.

The operator writes ``DEST=Header-Name:env:VARIABLE`` (``api.example.com=Authorization:env:EXAMPLE_KEY``;
DEST is a host name, ``*.domain``, an address, or any of those with ``:port``). The value is read from the
*server's* environment when the server starts and lives only in the server process: the zygote and the
sandboxes never see it (not in their environment, files or memory). The proxy sets the header on requests
to a matching destination, replacing one the sandbox sent under the same name.

HTTPS: a CONNECT tunnel carries TLS end to end, so the proxy cannot add a header without terminating TLS
(a certificate the sandbox would have to trust, and the proxy reading every byte). It does not: headers are
injected into plain-HTTP requests only, and docs/egress.md says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .policy import Entry, parse_address, parse_entry


@dataclass(frozen=True)
class InjectedHeader:
    destination: Entry
    name: str
    value: str = field(repr=False)
    """The secret: never logged, never repr'd."""

    def applies_to(self, host: str, port: int) -> bool:
        dest = self.destination
        if not dest.allows_port(port):
            return False
        if dest.network is not None:
            address = parse_address(host)
            return address is not None and address.version == dest.network.version and address in dest.network
        return dest.matches_name(host.lower().rstrip("."))


def parse_header_rule(text: str, env: Mapping[str, str] | None = None) -> InjectedHeader:
    """``DEST=Header:env:VAR`` with VAR read from ``env`` (default: the server's ``os.environ``)."""
    env = os.environ if env is None else env
    dest, sep, rest = text.partition("=")
    name, sep2, source = rest.partition(":")
    kind, sep3, variable = source.partition(":")
    if not (sep and sep2 and sep3) or kind != "env" or not name.strip() or not variable:
        raise ValueError(f"egress header {text!r}: expected DEST=Header-Name:env:VARIABLE")
    name = name.strip()
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in name):
        raise ValueError(f"egress header {text!r}: {name!r} is not a header name")
    entry = parse_entry(dest)
    if entry.ports is not None and entry.name and entry.ports == frozenset({80, 443}):
        entry = Entry(text=entry.text, ports=None, name=entry.name, wildcard=entry.wildcard)  # every port of it
    if variable not in env:
        raise ValueError(f"egress header for {dest!r}: the variable {variable} is not set in the server's environment")
    value = env[variable]
    if any(c in value for c in "\r\n\x00"):
        raise ValueError(f"egress header for {dest!r}: the value of {variable} has a line break or NUL")
    return InjectedHeader(destination=entry, name=name, value=value)


def parse_header_rules(texts: Iterable[str], env: Mapping[str, str] | None = None) -> tuple[InjectedHeader, ...]:
    return tuple(parse_header_rule(text, env) for text in texts)


def headers_for(rules: Iterable[InjectedHeader], host: str, port: int) -> list[tuple[str, str]]:
    return [(rule.name, rule.value) for rule in rules if rule.applies_to(host, port)]
