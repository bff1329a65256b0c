"""The screen registry: every page script declared once, and who each screen is for."""

from __future__ import annotations

import pytest

from ketadash.config import PROJECT_ROOT
from ketadash.models import StaffRole
from ketadash.screens import (
    BOOSTERS,
    HOME,
    LINK_SCREENS,
    RECOVERY,
    REMS,
    RIDE,
    SCREENS,
    SECTIONS,
    THROUGHPUT,
    TODAY,
    WALL,
    screen_at,
    screens_in,
)


def test_every_page_script_is_declared_once():
    scripts = sorted(f"pages/{path.name}" for path in (PROJECT_ROOT / "pages").glob("*.py"))
    assert sorted(screen.script for screen in (*SCREENS, *LINK_SCREENS)) == scripts


def test_titles_and_paths_are_unique():
    every = (*SCREENS, *LINK_SCREENS)
    assert len({screen.title for screen in every}) == len(every)
    assert len({screen.url_path for screen in every}) == len(every)


def test_the_drivers_page_is_reached_by_its_link_only():
    # Nobody's menu lists it (no audience, no section), and it needs no sign-in.
    assert LINK_SCREENS == (RIDE,)
    assert RIDE.by_link and RIDE.public and RIDE.audience == frozenset() and RIDE.section is None
    assert not any(screen.by_link for screen in SCREENS)


def test_home_is_the_only_screen_outside_the_sections():
    assert [screen for screen in SCREENS if screen.section is None] == [HOME]
    assert HOME.path == "/"
    assert [screen for section in SECTIONS for screen in screens_in(section)] == list(SCREENS[1:])


@pytest.mark.parametrize(
    ("screen", "audience"),
    [
        (TODAY, set(StaffRole)),
        (RECOVERY, set(StaffRole)),
        (WALL, set(StaffRole)),
        (BOOSTERS, {StaffRole.NURSE, StaffRole.LEAD}),
        (REMS, {StaffRole.NURSE, StaffRole.LEAD}),
        (THROUGHPUT, {StaffRole.LEAD}),
    ],
    ids=lambda value: getattr(value, "url_path", ""),
)
def test_each_screen_declares_who_may_see_it(screen, audience):
    assert screen.audience == audience


def test_only_the_wall_is_public():
    assert [screen for screen in SCREENS if screen.public] == [WALL]


def test_a_screen_is_found_by_its_address():
    assert screen_at("/today") is TODAY
    assert screen_at("wall") is WALL
    assert screen_at("/") is HOME
    assert screen_at("/ride") is RIDE
    with pytest.raises(KeyError):
        screen_at("/nowhere")


@pytest.mark.parametrize("screen", [s for s in SCREENS if not s.public], ids=lambda s: s.script)
def test_each_page_sets_itself_up_from_its_own_registry_entry(screen):
    """The title and icon are declared once: the page passes its Screen, never a string."""
    import ast

    import ketadash.screens

    tree = ast.parse((PROJECT_ROOT / screen.script).read_text())
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "page_setup"
    ]
    assert len(calls) == 1
    (argument,) = calls[0].args
    assert not calls[0].keywords
    assert isinstance(argument, ast.Name)
    assert getattr(ketadash.screens, argument.id) is screen
