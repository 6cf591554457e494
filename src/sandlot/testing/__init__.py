"""Fakes at sandlot's seams, shipped for tests (ours and yours)."""

from __future__ import annotations

from .upstream import Reply, ScriptedUpstream

__all__ = ["Reply", "ScriptedUpstream"]
