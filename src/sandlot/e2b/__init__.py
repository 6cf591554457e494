"""An E2B-compatible face on the engine: the unmodified E2B SDKs work against ``sandlot serve --e2b``.

    install         wraps the server's app with the dispatcher (dispatch.py)
    dispatch        tells control-plane calls from in-sandbox calls (``E2b-Sandbox-Id``/``-Port`` headers)
    control         the control plane: create, get, list, connect, timeout, kill (``/sandboxes``, ``/v2/sandboxes``)
    sandboxes       the registry: an E2B sandbox is a sandlot session, with its access token and timer
    templates       template names to sandlot environments
    interpreter     the code interpreter (port 49999): ``/execute`` as NDJSON, contexts
    results         MIME bundles as E2B result fields
    envd            the daemon's plain HTTP routes (port 49983): ``/health``, ``/files``
    connect         the daemon's Connect services, from the protocol stubs the ``e2b`` package ships
    process         E2B processes as sandlot shell commands
    filesystem      E2B file-system calls, as shell commands inside the sandbox
    environment     environment variables held to sandlot's own rule
    network         ``Sandbox.create``'s network options as sandlot's egress, honoured or refused (501)
    paths           E2B paths (``/home/user``) and the workspace
    scope           what the dispatcher puts in a request's scope (state, registry, the checked sandbox), typed
    errors          E2B's error body, and 501 for what sandlot does not do

Everything here is imported only when ``--e2b`` is on; it needs the ``e2b`` extra (``pip install 'sandlot[e2b]'``).
"""

from __future__ import annotations

from .dispatch import install

__all__ = ["install"]
