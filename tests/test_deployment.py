"""The shipped Streamlit configuration serves this machine only (issue 6, item 12)."""

from __future__ import annotations

import tomllib

import pytest

from ketadash.config import PROJECT_ROOT, PublicUrlInvalid, load_config, public_base_url


def test_the_shipped_server_listens_on_this_machine_only():
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("https://rides.clinic.example", "https://rides.clinic.example"),
        ("https://rides.clinic.example/", "https://rides.clinic.example"),
        (" https://clinic.example/ketadash/ ", "https://clinic.example/ketadash"),
        ("http://10.0.0.5:8701", "http://10.0.0.5:8701"),
    ],
)
def test_the_public_address_is_the_base_of_drivers_links(given, base):
    assert public_base_url(given) == base


@pytest.mark.parametrize(
    "given", ["rides.clinic.example", "ftp://clinic.example", "https://", "https://x.org/?a=1"]
)
def test_a_public_address_a_phone_cannot_open_is_refused_with_the_reason(given):
    with pytest.raises(PublicUrlInvalid, match="KETADASH_PUBLIC_URL"):
        public_base_url(given)


def test_the_driver_page_only_switch_and_the_public_address_are_read_from_the_environment(
    monkeypatch,
):
    monkeypatch.delenv("KETADASH_DRIVER_PAGE_ONLY", raising=False)
    monkeypatch.delenv("KETADASH_PUBLIC_URL", raising=False)
    assert load_config().driver_page_only is False
    assert load_config().public_url is None
    monkeypatch.setenv("KETADASH_DRIVER_PAGE_ONLY", "1")
    monkeypatch.setenv("KETADASH_PUBLIC_URL", "https://rides.clinic.example")
    assert load_config().driver_page_only is True
    assert load_config().public_url == "https://rides.clinic.example"
    monkeypatch.setenv("KETADASH_DRIVER_PAGE_ONLY", "0")
    assert load_config().driver_page_only is False


def test_the_shipped_server_skips_the_full_collection_after_each_run_and_watches_no_files():
    # Each redraw of a live screen would otherwise pay for a gc.collect(2) of the whole
    # process (docs/live-room.md): the live room's CPU budget depends on these two.
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
    assert config["server"]["fileWatcherType"] == "none"
