"""Where sandboxed code may connect: allow-list entries, their subset rule, and the check of one destination.

An entry is one of

- a domain name, ``example.com`` (that name only) or ``*.example.com`` (any name below it, not the name
  itself), on ports 80 and 443 unless a port is given: ``example.com:8080``;
- an address or a CIDR block, ``203.0.113.7``, ``10.1.0.0/16``, ``[::1]``, on any port unless one is given
  (``127.0.0.1:8080``, ``[::1]:8080``).

A name is allowed by name entries only, an address by address entries only. A name that resolves to an
address which is not globally routable (private, loopback, link-local, reserved: the host's own network)
is refused unless an address entry covers that address too: an allowed name whose DNS points inside must
not be a way in (DNS rebinding). A request may ask for a subset of the operator's entries, never more.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .._errors import InvalidRequestError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
WEB_PORTS = frozenset({80, 443})
"""The ports of a name given without one: plain HTTP and HTTPS."""


@dataclass(frozen=True)
class Entry:
    """One allowed destination. ``ports`` None: any port."""

    text: str
    ports: frozenset[int] | None
    name: str = ""
    """A lower-case domain name, or for a wildcard the suffix below which names match (``example.com``)."""
    wildcard: bool = False
    network: IPNetwork | None = None

    def allows_port(self, port: int) -> bool:
        return self.ports is None or port in self.ports

    def matches_name(self, host: str) -> bool:
        if not self.name:
            return False
        return host.endswith("." + self.name) if self.wildcard else host == self.name

    def covers(self, other: Entry) -> bool:
        """Whether everything ``other`` allows, this entry allows too."""
        if self.ports is not None and (other.ports is None or not other.ports <= self.ports):
            return False
        if other.network is not None:
            return self.network is not None and self.network.version == other.network.version and \
                other.network.subnet_of(self.network)  # type: ignore[arg-type]
        if not self.name:
            return False
        if self.wildcard:
            return other.name.endswith("." + self.name) or (other.wildcard and other.name == self.name)
        return not other.wildcard and other.name == self.name


def parse_entry(text: str) -> Entry:
    """An allow-list entry from its text; ``ValueError`` names what is wrong."""
    raw = text.strip()
    if not raw:
        raise ValueError("an empty egress entry")
    host, port = _split_port(raw)
    ports = None if port is None else frozenset({port})
    try:
        network = ipaddress.ip_network(host.strip("[]"), strict=True)
    except ValueError as exc:
        if "/" in host or host.startswith("["):
            raise ValueError(f"egress entry {raw!r}: {exc}") from None
    else:
        return Entry(text=raw, ports=ports, network=_unmapped_network(network))
    name = host.lower().rstrip(".")
    wildcard = name.startswith("*.")
    if wildcard:
        name = name[2:]
    if not _is_domain(name):
        raise ValueError(f"egress entry {raw!r} is not a domain name, *.domain, address, CIDR or host:port")
    return Entry(text=raw, ports=WEB_PORTS if ports is None else ports, name=name, wildcard=wildcard)


def parse_entries(texts: Iterable[str]) -> tuple[Entry, ...]:
    return tuple(parse_entry(text) for text in texts)


@dataclass(frozen=True)
class Policy:
    """The destinations one run (or session) may reach."""

    entries: tuple[Entry, ...]

    @classmethod
    def parse(cls, texts: Iterable[str]) -> Policy:
        return cls(parse_entries(texts))

    def narrowed(self, asked: Sequence[str] | None) -> Policy:
        """The part of this policy a request asks for (None: all of it); ``InvalidRequestError`` beyond it."""
        if asked is None:
            return self
        try:
            wanted = parse_entries(asked)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
        for entry in wanted:
            if not any(own.covers(entry) for own in self.entries):
                raise InvalidRequestError(f"network.allow: {entry.text!r} is beyond what this server allows "
                                          f"({', '.join(e.text for e in self.entries) or 'nothing'})")
        return Policy(wanted)

    def check_name(self, host: str, port: int) -> str | None:
        """Why ``host:port`` (as the sandbox named it, before any lookup) is refused; None: it may go on."""
        address = parse_address(host)
        if address is not None:
            return None if self.allows_address(address, port) else f"{host}:{port} is not on the allow list"
        name = host.lower().rstrip(".")
        if not _is_domain(name):
            return f"{host!r} is not a valid host name"
        if any(entry.matches_name(name) and entry.allows_port(port) for entry in self.entries):
            return None
        return f"{name}:{port} is not on the allow list"

    def allows_address(self, address: IPAddress, port: int) -> bool:
        """An address entry covers ``address`` on ``port``."""
        return any(entry.network is not None and entry.network.version == address.version
                   and address in entry.network and entry.allows_port(port) for entry in self.entries)

    def allows_resolved(self, address: IPAddress, port: int) -> bool:
        """An address a name resolved to may be connected to: a public one, or one an address entry covers."""
        return is_public(address) or self.allows_address(address, port)


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast, judged by the IPv4 address an IPv6 one carries when it carries one.

    ``ipaddress`` calls NAT64 (``64:ff9b::/96``), 6to4 (``2002::/16``), IPv4-compatible (``::/96``) and
    IPv4-translated (``::ffff:0:0:0/96``) addresses global whatever IPv4 address they embed: a name whose AAAA is
    ``64:ff9b::a00:1`` would reach 10.0.0.1 through a host's NAT64 gateway, ``::7f00:1`` or
    ``2002:7f00:1::`` the host's loopback where those routes exist. Multicast is no destination either."""
    if address.is_multicast or not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return embedded.is_global and not embedded.is_multicast
    return True


_EMBEDDING = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96"))
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
"""RFC 8215's local-use NAT64 prefix: what it translates to is the site's choice, so never public here."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _LOCAL_NAT64:
        return ipaddress.IPv4Address(0)  # not global: refused
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _EMBEDDING):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def parse_address(host: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return _unmapped(address)


def _unmapped(address: IPAddress) -> IPAddress:
    # ::ffff:10.0.0.1 is 10.0.0.1: judged as the IPv4 address it reaches.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _unmapped_network(network: IPNetwork) -> IPNetwork:
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen == 128:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.ip_network(mapped)
    return network


def _split_port(raw: str) -> tuple[str, int | None]:
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0:
            raise ValueError(f"egress entry {raw!r}: no closing ']'")
        rest = raw[end + 1:]
        if not rest:
            return raw[:end + 1], None
        if not rest.startswith(":"):
            raise ValueError(f"egress entry {raw!r}: expected ':port' after ']'")
        return raw[:end + 1], _port(raw, rest[1:])
    if raw.count(":") == 1:
        host, _, port = raw.partition(":")
        return host, _port(raw, port)
    return raw, None  # no port, or a bare IPv6 address


def _port(raw: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"egress entry {raw!r}: the port must be 1-65535")
    return int(text)


def _is_domain(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    for label in name.split("."):
        if not label or len(label) > 63 or label.startswith("-") or label.endswith("-"):
            return False
        if not all(c.isascii() and (c.isalnum() or c in "-_") for c in label):
            return False
    return True


__all__ = ["Entry", "Policy", "is_public", "parse_address", "parse_entries", "parse_entry"]
