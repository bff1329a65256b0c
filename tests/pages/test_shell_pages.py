"""Every page runs through the shell: ready database, demo marker, plain errors.

AppTest runs ``dashboard.py`` in-process, as the browser would, minus the browser
(so it cannot see the legacy multipage trap: tests/browser guards that).
"""

from __future__ import annotations

import html
import shutil
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from ketadash import config as deployment_config
from ketadash.clinic import list_sites
from ketadash.clock import utc_now
from ketadash.config import DATABASE_URL_VARIABLE, PROJECT_ROOT
from ketadash.db import get_engine
from ketadash.models import StaffRole
from ketadash.screens import HOME, SCREENS, Screen
from ketadash.ui.auth import DEMO_ROLE_KEY
from tests.pages.conftest import demo_sign_in, sign_in
from tests.utils.factories import LEAD_EMAIL

ENTRY_POINT = str(PROJECT_ROOT / "dashboard.py")
RUN_TIMEOUT_S = 60
DATABASE_DOWN_URL = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"

# Site names a careless or hostile import could bring: markdown, HTML, a right-to-left override.
HOSTILE_SITE_NAMES = [
    "[c](https://example.org)",
    "![t](http://host.example/x.png)",
    "<img src=x onerror=alert(1)>",
    "**bold** :red[red] $x^2$",
    "North\u202eEast",
]
HOSTILE_CLINIC_NAME = "[Clinic](https://example.org)"


def build_small_demo(url: str, *, builder=None) -> None:
    if builder is None:
        from ketadash.demo import build_demo_clinic as builder

    builder(url=url, patients=40, history_days=30, now=utc_now())
    get_engine(url).dispose()


@pytest.fixture(scope="session")
def demo_url(tmp_path_factory) -> str:
    """A small demo clinic, built once; the page tests only read it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('pages-demo') / 'demo.sqlite'}"
    build_small_demo(url)
    return url


@pytest.fixture(autouse=True)
def fresh_streamlit_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def run_page(script: str, *, query: dict[str, str] | None = None) -> AppTest:
    """The page as the demo's sign-in shows it to a clinic lead, who may open every screen."""
    app = demo_sign_in(AppTest.from_file(ENTRY_POINT, default_timeout=RUN_TIMEOUT_S))
    app.session_state[DEMO_ROLE_KEY] = StaffRole.LEAD
    for name, value in (query or {}).items():
        app.query_params[name] = value
    app.run()
    if script != HOME.script:
        app.switch_page(script)
        app.run()
    return app


def page_text(app: AppTest) -> str:
    parts = [m.value for m in app.markdown] + [t.value for t in app.title]
    parts += [e.value for e in app.error] + [i.value for i in app.info]
    parts += [h.value for h in app.get("html")]
    return "\n".join(str(part) for part in parts)


def assert_no_exception(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]


def _screen_id(screen: Screen) -> str:
    return screen.url_path or "home"


@pytest.mark.parametrize("screen", SCREENS, ids=_screen_id)
def test_page_renders_with_demo_marker(monkeypatch, demo_url, screen):
    monkeypatch.setenv(DATABASE_URL_VARIABLE, demo_url)
    app = run_page(screen.script)
    assert_no_exception(app)
    if screen.public:
        # The wall is a TV: its heading (the site's name and "Recovery") is drawn as HTML.
        assert any(screen.page_heading in h.value for h in app.get("html"))
    else:
        # The page's own heading and icon agree with the registry's.
        assert [title.value for title in app.title] == [f"{screen.icon} {screen.page_heading}"]
    assert "DEMO DATA" in page_text(app)


def test_home_links_to_every_other_screen(monkeypatch, demo_url):
    monkeypatch.setenv(DATABASE_URL_VARIABLE, demo_url)
    app = run_page(HOME.script)
    assert_no_exception(app)
    links = {link.proto.page: link.label for link in app.main.get("page_link")}
    for screen in SCREENS:
        if not screen.is_home:
            assert links[screen.url_path] == f"**{screen.title}**"
            assert screen.description in page_text(app)


def test_home_names_every_site(monkeypatch, demo_url):
    monkeypatch.setenv(DATABASE_URL_VARIABLE, demo_url)
    app = run_page(HOME.script)
    for site in list_sites(url=demo_url):
        assert site.name in page_text(app)


@pytest.fixture
def hostile_clinic_url(demo_url, tmp_path) -> Iterator[str]:
    """The demo clinic with a site for each hostile name and a hostile clinic name."""
    path = tmp_path / "hostile.sqlite"
    shutil.copy(demo_url.removeprefix("sqlite:///"), path)
    url = f"sqlite:///{path}"
    with get_engine(url).begin() as connection:
        connection.execute(sa.text("DELETE FROM clinic_info WHERE key = 'clinic_name'"))
        connection.execute(
            sa.text("INSERT INTO clinic_info (key, value) VALUES ('clinic_name', :name)"),
            {"name": HOSTILE_CLINIC_NAME},
        )
        first = connection.execute(sa.text("SELECT * FROM site ORDER BY id LIMIT 1")).mappings()
        template = dict(first.one())
        for number, name in enumerate(HOSTILE_SITE_NAMES):
            row = {**template, "code": f"hostile-{number}", "name": name}
            row.pop("id")
            columns = ", ".join(row)
            values = ", ".join(f":{column}" for column in row)
            connection.execute(sa.text(f"INSERT INTO site ({columns}) VALUES ({values})"), row)
    yield url
    get_engine(url).dispose()


def test_home_shows_names_from_the_database_as_text(monkeypatch, hostile_clinic_url):
    monkeypatch.setenv(DATABASE_URL_VARIABLE, hostile_clinic_url)
    app = run_page(HOME.script)
    assert_no_exception(app)
    interpreted = [m.value for m in app.markdown] + [t.value for t in app.title]
    interpreted += [h.value for h in app.subheader] + [c.value for c in app.caption]
    shown_as_html = "\n".join(h.value for h in app.get("html"))
    for name in [*HOSTILE_SITE_NAMES, HOSTILE_CLINIC_NAME]:
        assert not any(name in text for text in interpreted), f"{name!r} given to markdown"
        assert f"<bdi>{html.escape(name)}</bdi>" in shown_as_html
    assert "<img" not in shown_as_html


def test_database_down_shows_a_plain_message(monkeypatch):
    monkeypatch.setenv(DATABASE_URL_VARIABLE, DATABASE_DOWN_URL)
    app = run_page(HOME.script)
    assert_no_exception(app)
    assert len(app.error) == 1
    assert "cannot be reached" in app.error[0].value
    assert "Traceback" not in page_text(app)
    assert app.expander[0].label.startswith("Technical detail")
    assert "DEMO DATA" not in page_text(app)


def test_database_down_on_a_page_with_a_site_picker(monkeypatch):
    monkeypatch.setenv(DATABASE_URL_VARIABLE, DATABASE_DOWN_URL)
    app = run_page("pages/recovery.py")
    assert_no_exception(app)
    assert "cannot be reached" in app.error[0].value
    assert not app.info, "the page must stop before its placeholder"


def test_database_lost_later_in_a_page_shows_the_plain_message(monkeypatch, demo_url):
    from ketadash import clinic
    from ketadash.db import DatabaseUnavailable

    monkeypatch.setenv(DATABASE_URL_VARIABLE, demo_url)

    def lost(**_ignored):
        raise DatabaseUnavailable("connection reset by peer")

    monkeypatch.setattr(clinic, "list_sites", lost)
    app = run_page(HOME.script)
    assert_no_exception(app)
    assert "cannot be reached" in app.error[0].value


def test_unmigrated_database_asks_the_operator_to_migrate(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    monkeypatch.setenv(DATABASE_URL_VARIABLE, url)
    app = run_page("pages/recovery.py")
    assert_no_exception(app)
    assert "python -m ketadash migrate" in app.error[0].value
    assert not app.info, "the page must stop before its placeholder"


def test_embedded_database_is_built_as_the_demo_once(monkeypatch, tmp_path):
    import ketadash.demo

    embedded = tmp_path / "ketadash.sqlite"
    monkeypatch.delenv(DATABASE_URL_VARIABLE, raising=False)
    monkeypatch.setattr(deployment_config, "DEFAULT_SQLITE_PATH", embedded)
    builds: list[str] = []
    real_builder = ketadash.demo.build_demo_clinic

    def small_build(*, url: str, **_ignored) -> None:
        builds.append(url)
        build_small_demo(url, builder=real_builder)

    monkeypatch.setattr(ketadash.demo, "build_demo_clinic", small_build)
    first = run_page(HOME.script)
    second = run_page("pages/boosters.py")
    assert_no_exception(first)
    assert_no_exception(second)
    assert builds == [f"sqlite:///{embedded}"]
    assert "DEMO DATA" in page_text(second)
    get_engine(builds[0]).dispose()


def test_wall_takes_its_site_from_the_url(monkeypatch, demo_url):
    from ketadash.db import read_session
    from ketadash.models import Site

    monkeypatch.setenv(DATABASE_URL_VARIABLE, demo_url)
    first, second = list_sites(url=demo_url)[:2]
    with read_session(demo_url) as db:
        code = db.get(Site, second.id).code
    app = run_page("pages/wall.py", query={"site": code})
    assert_no_exception(app)
    # The wall's site is its site code in the URL: nothing to choose on a TV.
    assert not app.selectbox
    assert f"<bdi>{second.name}</bdi> · Recovery" in page_text(app)
    assert f"<bdi>{first.name}</bdi>" not in page_text(app)
    assert app.query_params["site"] == code


def test_site_choice_is_written_to_the_url(monkeypatch, demo_url):
    monkeypatch.setenv(DATABASE_URL_VARIABLE, demo_url)
    first, second = list_sites(url=demo_url)[:2]
    app = run_page("pages/recovery.py")
    assert app.sidebar.selectbox[0].value == first.id
    app.sidebar.selectbox[0].select(second.id).run()
    assert_no_exception(app)
    assert app.query_params["site"] == str(second.id)
    assert second.name in page_text(app)


def test_first_site_needs_no_url_parameter(monkeypatch, demo_url):
    monkeypatch.setenv(DATABASE_URL_VARIABLE, demo_url)
    app = run_page("pages/recovery.py")
    assert_no_exception(app)
    assert "site" not in app.query_params


def test_site_choice_follows_the_user_to_another_page(monkeypatch, demo_url):
    monkeypatch.setenv(DATABASE_URL_VARIABLE, demo_url)
    second = list_sites(url=demo_url)[1]
    app = run_page("pages/recovery.py")
    app.sidebar.selectbox[0].select(second.id).run()
    app.query_params.clear()
    app.switch_page("pages/today.py").run()
    assert_no_exception(app)
    assert app.sidebar.selectbox[0].value == second.id
    assert app.query_params["site"] == str(second.id)


def test_unknown_site_in_the_url_falls_back_to_the_first(monkeypatch, demo_url):
    monkeypatch.setenv(DATABASE_URL_VARIABLE, demo_url)
    first = list_sites(url=demo_url)[0]
    app = run_page("pages/recovery.py", query={"site": "not-a-site"})
    assert_no_exception(app)
    assert app.sidebar.selectbox[0].value == first.id


def test_a_clinic_without_sites_points_to_the_site_command(monkeypatch, tmp_path):
    from ketadash.auth import set_staff_email
    from ketadash.db import migrate
    from ketadash.roster import ensure_staff

    url = f"sqlite:///{tmp_path / 'no-sites.sqlite'}"
    migrate(url)
    # The lead is on the roster (for every site) before any site exists.
    staff_id = ensure_staff(url=url, name="Lee Park", role="lead", site_code=None)
    set_staff_email(url=url, staff_id=staff_id, email=LEAD_EMAIL)
    monkeypatch.setenv(DATABASE_URL_VARIABLE, url)
    app = sign_in(AppTest.from_file(ENTRY_POINT, default_timeout=RUN_TIMEOUT_S), LEAD_EMAIL)
    app.run()
    app.switch_page("pages/today.py").run()
    assert_no_exception(app)
    said = " ".join(w.value for w in app.warning)
    assert "python -m ketadash site --code … --name … --time-zone … --chairs N" in said
    assert "import" not in said  # the import cannot create sites
    get_engine(url).dispose()


def test_each_run_gets_its_own_copies_of_the_kept_pages():
    """``st.navigation`` marks the page a run may run on the object itself; with fast
    reruns a session's last run may still be stopping, so no two runs share one."""
    from ketadash.screens import HOME, TODAY
    from ketadash.ui.navigation import Navigation

    kept = Navigation(
        menu=(TODAY,),
        sections={"": [st.Page(HOME.script)], "Monitoring room": [st.Page(TODAY.script)]},
    )
    this_run, next_run = kept.for_this_run(), kept.for_this_run()
    for name, pages in kept.sections.items():
        for page, mine, theirs in zip(pages, this_run.sections[name], next_run.sections[name],
                                      strict=True):  # fmt: skip
            assert mine is not page and mine is not theirs
            assert vars(mine) == vars(page)
