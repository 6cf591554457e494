"""The egress proxy a sandbox would get, serving a listener on a host loopback port instead: its seam.

In a sandbox the proxy's listener is bound inside the sandbox's network namespace (``egress.netns``); here it is
bound on the host's loopback, so a test or a benchmark talks to the same ``SandboxProxy`` without a sandbox.

    proxy, port = await proxy_on_a_port(EgressSettings(allow=("127.0.0.1:8080",)))
    ...  # GET http://127.0.0.1:8080/... through 127.0.0.1:<port>
    records = await proxy.close()
"""

from __future__ import annotations

import socket

from ..egress import EgressSettings, Policy, SandboxProxy
from ..egress.netns import BACKLOG


async def proxy_on_a_port(settings: EgressSettings) -> tuple[SandboxProxy, int]:
    """A proxy under ``settings`` (its policy their allow list) on a free port of 127.0.0.1, served by the
    running loop; ``close()`` it."""
    proxy = SandboxProxy(Policy.parse(settings.allow), settings)
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(BACKLOG)  # as the sandbox's listener (netns.listen_in)
        listener.setblocking(False)
        await proxy.serve(listener)
    except BaseException:
        listener.close()
        raise
    port: int = listener.getsockname()[1]
    return proxy, port
