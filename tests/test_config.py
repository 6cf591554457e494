"""The server's configuration: the TOML layout docs/configuration.md shows, the environment, precedence.

The documentation is the oracle: its TOML example must load and mean what it says, and every setting
and variable must be in it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandlot._config import DEFAULT_MAX_LIMITS, GiB
from sandlot._errors import SetupError
from sandlot.server.config import environment_variables, load_config

DOC = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()


def toml_example(tmp_path: Path) -> Path:
    blocks = re.findall(r"```toml\n(.*?)```", DOC, re.S)
    assert len(blocks) == 1
    path = tmp_path / "sandlot.toml"
    path.write_text(blocks[0])
    return path


def test_the_documented_toml_example_loads_and_means_what_it_says(tmp_path: Path) -> None:
    config = load_config(str(toml_example(tmp_path)), env={})
    assert (config.max_batch_items, config.shutdown_grace) == (16, 30)
    assert (config.engine.pool_size, config.engine.preload) == (8, ("numpy", "pandas"))
    assert (config.engine.limits.timeout, config.engine.limits.memory) == (60, 2 * GiB)
    # Raising one maximum keeps the others at their defaults (not at the default limits).
    assert config.engine.max_limits.timeout == 600
    assert config.engine.max_limits.memory == DEFAULT_MAX_LIMITS.memory
    assert config.agent.max_steps == 6
    assert [m.name for m in config.models] == ["qwen"]


def test_every_setting_and_its_variable_is_documented() -> None:
    variables = environment_variables()
    assert len(variables) > 50
    for variable, dotted in variables.items():
        name = dotted.rsplit(".", 1)[-1]
        assert f"| `{name}` | `{variable}` |" in DOC, f"{dotted} ({variable}) is not in docs/configuration.md"


def test_every_setting_has_a_variable_flag_or_not() -> None:
    config = load_config(None, env={"SANDLOT_MAX_BATCH_ITEMS": "2", "SANDLOT_INTERRUPT_GRACE": "0.5",
                                    "SANDLOT_WORKSPACE_SIZE": str(64 << 20), "SANDLOT_MAX_TIMEOUT": "900",
                                    "SANDLOT_AGENT_MAX_STEPS": "3", "SANDLOT_PRELOAD": "", "SANDLOT_API_KEYS": "a,b"})
    assert config.max_batch_items == 2
    assert config.engine.interrupt_grace == 0.5
    assert config.engine.limits.workspace_size == 64 << 20
    assert config.engine.max_limits.timeout == 900
    assert config.agent.max_steps == 3
    assert config.engine.preload == ()
    assert config.api_keys == ("a", "b")


def test_the_command_line_beats_the_environment_which_beats_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sandlot.toml"
    path.write_text("port = 1000\nmax_batch_items = 5\n[engine]\npool_size = 3\n")
    config = load_config(str(path), {"port": 3000}, env={"SANDLOT_PORT": "2000", "SANDLOT_MAX_BATCH_ITEMS": "7"})
    assert (config.port, config.max_batch_items, config.engine.pool_size) == (3000, 7, 3)


def test_the_clients_api_key_variable_is_accepted_by_the_server_too() -> None:
    config = load_config(None, {"api_keys": ("from-flag",)}, env={"SANDLOT_API_KEY": "shared", "SANDLOT_API_KEYS": "x"})
    assert set(config.all_api_keys()) == {"from-flag", "shared", "x"}


@pytest.mark.parametrize(("toml", "hint"), [
    ("pool_size = 1\n", "invalid setting pool_size: there is no such setting here; it belongs in [engine]"),
    ("[engine]\ntimeout = 5\n", "invalid setting engine.timeout: there is no such setting here; it belongs in [engine.limits]"),
    ("[engine.limits]\nport = 5\n", "it is a top-level setting"),
    ("[engine]\npool_sise = 1\n", "invalid setting engine.pool_sise: there is no such setting (see docs/configuration.md)"),
], ids=["engine-at-top", "limit-in-engine", "top-in-limits", "misspelt"])
def test_a_setting_in_the_wrong_place_says_where_it_belongs(tmp_path: Path, toml: str, hint: str) -> None:
    path = tmp_path / "sandlot.toml"
    path.write_text(toml)
    with pytest.raises(SetupError, match=re.escape(hint)):
        load_config(str(path), env={})


def test_a_bad_value_in_the_environment_names_the_setting() -> None:
    with pytest.raises(SetupError, match="invalid setting max_batch_items"):
        load_config(None, env={"SANDLOT_MAX_BATCH_ITEMS": "two"})
