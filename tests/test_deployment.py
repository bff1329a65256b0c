"""The shipped Streamlit configuration serves this machine only (issue 6, item 12)."""

from __future__ import annotations

import tomllib

from ketadash.config import PROJECT_ROOT


def test_the_shipped_server_listens_on_this_machine_only():
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"


def test_the_shipped_server_skips_the_full_collection_after_each_run_and_watches_no_files():
    # Each redraw of a live screen would otherwise pay for a gc.collect(2) of the whole
    # process (docs/live-room.md): the live room's CPU budget depends on these two.
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
    assert config["server"]["fileWatcherType"] == "none"
