"""Egress: a controlled way out for sandboxed code (docs/egress.md).

Off by default. The operator allows destinations (``policy``); a request asks for a subset; a sandbox with
network gets TCP sockets (its own seccomp program) in a network namespace that still has no route out, and
the host's proxy (``proxy``), listening inside that namespace (``netns``), is the only thing it can reach.
The proxy checks every destination, resolves names on the host, checks TLS server names, caps each run,
records every connection, adds the operator's headers to plain-HTTP requests (``credentials``), and keeps
the wheels pip downloads (``wheels``).
"""

from .policy import Entry, Policy, parse_entry
from .proxy import PROXY_PORT, SandboxProxy
from .service import PACKAGES_DIR, Egress
from .settings import EgressSettings

__all__ = ["PACKAGES_DIR", "PROXY_PORT", "Egress", "EgressSettings", "Entry", "Policy", "SandboxProxy", "parse_entry"]
