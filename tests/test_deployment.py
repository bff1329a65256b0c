"""The shipped Streamlit configuration serves this machine only (issue 6, item 12)."""

from __future__ import annotations

import tomllib

from ketadash.config import PROJECT_ROOT


def test_the_shipped_server_listens_on_this_machine_only():
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
