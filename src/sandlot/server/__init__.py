"""The HTTP server: API.md implemented with FastAPI on uvicorn."""

from __future__ import annotations

from .app import create_app
from .config import ServerConfig, load_config
from .run import serve

__all__ = ["ServerConfig", "create_app", "load_config", "serve"]
