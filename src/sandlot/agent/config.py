"""Upstream models and the agent loop's guards.

An upstream is any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM,
Ollama, llama.cpp, LM Studio...). Its key is read from an environment variable
named here, at the moment of the call: it is never stored in the config, never
logged, and never reaches the zygote or a sandbox.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ActionFormat = Literal["tool_calls", "code_blocks", "auto"]


class UpstreamModel(BaseModel):
    """One model the agent endpoint serves, and where it really lives."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="The name clients ask for; listed by /v1/models.")
    base_url: str = Field(description="The upstream's OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1.")
    model: str | None = Field(None, description="The model name to send upstream (default: `name`).")
    api_key_env: str | None = Field(None, description="Environment variable holding the upstream's API key.")
    action_format: ActionFormat = Field(
        "auto", description="tool_calls: a native `python` tool. code_blocks: ```python blocks in the reply "
                            "(for models without tool calls). auto: offer the tool, and also run code blocks "
                            "when the model answers with them instead.")
    vision: bool = Field(False, description="The model accepts images; figures are shown to it as images.")
    timeout: float = Field(120.0, gt=0, description="Seconds per upstream call.")
    max_retries: int = Field(2, ge=0, description="Retries of failed upstream calls (connection errors, 429, 5xx).")

    @property
    def upstream_name(self) -> str:
        return self.model or self.name

    def api_key(self) -> str:
        if self.api_key_env:
            return os.environ.get(self.api_key_env, "")
        return "sandlot-no-key"  # OpenAI-compatible local servers ignore it; the SDK insists on one


class AgentSettings(BaseModel):
    """Guards of the server-side loop; each also has a per-request override up to these values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_steps: int = Field(10, ge=1, le=100, description="Model turns that run code, per request.")
    max_wall_time: float = Field(300.0, gt=0, description="Seconds for the whole request, model and code.")
    result_budget: int = Field(4000, ge=200, description="Characters of each run's result shown to the model.")
    traceback_frames: int = Field(3, ge=1, description="Last traceback frames shown to the model on an error.")
    repeat_limit: int = Field(2, ge=2, description="The same failing code this many times in a row stops the loop.")
    compute_numbers: bool = Field(True, description="An answer, before any code ran, with numbers the request does "
                                                    "not contain is sent back once: compute that with code first.")
    candidates: int = Field(1, ge=1, le=9, description="Self-consistency: programs sampled for each code turn, all "
                                                       "run, the output most of them print wins (ties: the first, "
                                                       "the model's own reply). 1: off.")
    candidate_temperature: float = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature of the extra "
                                                                          "candidates (each with a seed of its own).")
