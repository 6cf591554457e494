"""Host tools that sandboxed code can call (``from sandlot.tools import ...`` inside a sandbox).

On the host, this package defines and holds the tools::

    from sandlot.tools import ToolRegistry

    registry = ToolRegistry()

    @registry.tool
    def get_weather(city: str) -> dict:
        \"\"\"Current weather for a city.\"\"\"
        ...

and ``sandlot serve --tools mymodule:registry`` offers them to every sandbox.
"""

from __future__ import annotations

from .broker import ToolBroker
from .registry import Tool, ToolCallError, ToolRegistry, http_tool, load_registry, tool_from_callable, tools_from_openapi

__all__ = ["Tool", "ToolBroker", "ToolCallError", "ToolRegistry", "http_tool", "load_registry",
           "tool_from_callable", "tools_from_openapi"]
