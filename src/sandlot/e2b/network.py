"""E2B's network options on ``Sandbox.create``, as sandlot's egress (docs/e2b.md, docs/egress.md).

E2B's sandboxes reach the open internet unless told otherwise; sandlot's reach nothing unless asked, and never more
than the operator's ``--egress-allow``. Each E2B option is honoured where sandlot can do what it says, and refused
(``501``) where it cannot, never silently widened or dropped:

- ``network.allowOut``: exactly those destinations, each within the operator's list (beyond it, a ``400``). In E2B
  an allow list without a deny list still lets everything out; here nothing else is reachable, the narrower
  reading, so the sandbox never gets more than was named.
- ``network.denyOut``: only "all traffic" (``0.0.0.0/0``, the SDK's ``ALL_TRAFFIC``), which is what sandlot does
  beyond an allow list anyway; any narrower deny rule is a ``501`` (sandlot's egress is an allow list).
- ``allow_internet_access``: ``true`` (with no ``allowOut`` and no deny-all) is everything the operator allows;
  ``false`` or unset is no network (sandlot's default, not E2B's).
- Asking for network on a server whose operator allows none is a ``501`` saying so, as before egress existed.
- ``rules`` (per-host request transforms), ``egressProxy``, ``dnsServers``, ``maskRequestHost``, ``httpsPorts`` and
  ``allowPublicTraffic: true``: ``501``. Credentials are attached by the operator (``--egress-header``), names are
  resolved on the host (a sandbox needs no DNS server), and a sandbox has no public URL.
"""

from __future__ import annotations

from typing import Any

from .._errors import InvalidRequestError
from .errors import NotSupported

ALL_TRAFFIC = "0.0.0.0/0"
"""E2B's "every destination" (``e2b.ALL_TRAFFIC``)."""

_REFUSED = {
    "rules": "per-host request transforms are not supported: the operator attaches credentials to destinations "
             "(--egress-header, docs/egress.md)",
    "egressProxy": "an egress proxy of your own is not supported: sandlot's host-side proxy is the only way out",
    "dnsServers": "DNS servers for the sandbox are not supported: names are resolved on the host by the egress proxy",
    "maskRequestHost": "a request host mask is not supported: sandlot's sandboxes have no public URLs",
    "httpsPorts": "HTTPS port rules are not supported: allow host:port destinations in allowOut",
}


def requested_network(body: dict[str, Any], operator_allows: tuple[str, ...]) -> list[str] | None:
    """The ``network`` to make the sandbox's session with (None: no network), from E2B's create body."""
    internet = body.get("allow_internet_access")
    if internet is not None and not isinstance(internet, bool):
        raise InvalidRequestError("'allow_internet_access' must be true or false")
    options = body.get("network")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InvalidRequestError("'network' must be an object")
    for key, why in _REFUSED.items():
        if options.get(key) not in (None, [], {}):
            raise NotSupported(why)
    if options.get("allowPublicTraffic") is True:
        raise NotSupported("public sandbox traffic is not supported: every call to a sandbox needs its token")
    allow_out = _destinations(options, "allowOut")
    deny_out = _destinations(options, "denyOut")
    if deny_out is not None and set(deny_out) - {ALL_TRAFFIC}:
        raise NotSupported("deny rules other than all traffic (0.0.0.0/0) are not supported: sandlot's egress is an "
                           "allow list; name what may be reached in allowOut")
    if allow_out == []:
        return None  # nothing to reach: no network at all
    if allow_out is not None:
        wanted: list[str] | None = allow_out
    elif internet is True and not deny_out:
        wanted = None  # everything the operator allows
    else:
        return None
    if not operator_allows:
        raise NotSupported("internet access is not supported on this server: its operator allows no egress "
                           "(--egress-allow, docs/egress.md)")
    return list(operator_allows) if wanted is None else wanted


def _destinations(options: dict[str, Any], key: str) -> list[str] | None:
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequestError(f"'network.{key}' must be a list of destinations")
    return list(value)
