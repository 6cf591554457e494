"""Host tools for tests/test_tracing.py's server (``--tools tracing_tools:registry``).

``lookup`` is an HTTP tool on the test's own loopback service (``TRACE_TOOL_URL``), offered to
code and to the model alike, so a trace has both kinds of tool call and the service sees the
``traceparent`` the server sends on.
"""

from __future__ import annotations

import os

from sandlot.tools import ToolRegistry, http_tool

registry = ToolRegistry([http_tool("lookup", "GET", os.environ["TRACE_TOOL_URL"] + "/lookup/{key}",
                                   description="The value stored under a key.", params={"key": str}, expose="both")])
