"""The command line: every URL spelling, no database made by a typo, and --now."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from ketadash.__main__ import main
from ketadash.db import get_engine, read_session
from ketadash.models import SiteSetting
from tests.test_db import POSTGRES_SPELLINGS, spelt
from tests.utils.postgres import empty_postgres_schema, tables_in

# Every command that must find a clinic database already there, with arguments that
# would otherwise be valid.
NEEDS_A_DATABASE = {
    "site": ["--code", "main", "--name", "Main", "--time-zone", "America/New_York"],
    "staff": ["--name", "Dana Reyes", "--role", "nurse"],
    "settings": ["--site", "main"],
    "import": ["--patients", "patients.csv", "--sessions", "sessions.csv"],
}


@pytest.fixture
def empty_schema_url():
    with empty_postgres_schema() as url:
        yield url


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", POSTGRES_SPELLINGS)
def test_every_command_takes_every_postgres_spelling(empty_schema_url, scheme, capsys):
    url = spelt(empty_schema_url, scheme)
    assert main(["migrate", "--url", url]) == 0
    assert "schema is current: postgresql+psycopg://" in capsys.readouterr().out
    site = ["--code", "main", "--name", "Main", "--time-zone", "America/New_York", "--chairs", "2"]
    assert main(["site", "--url", url, *site]) == 0
    assert main(["staff", "--url", url, "--name", "Dana Reyes", "--role", "nurse"]) == 0
    assert main(["settings", "--url", url, "--site", "main", "hold_systolic=150"]) == 0
    assert "hold_systolic = 150" in capsys.readouterr().out


@pytest.mark.parametrize("command", list(NEEDS_A_DATABASE))
def test_a_mistyped_sqlite_url_creates_nothing(command, tmp_path, capsys):
    path = tmp_path / "typo" / "clinic.sqlite"
    url = f"sqlite:///{path}"
    assert main([command, "--url", url, *NEEDS_A_DATABASE[command]]) == 1
    error = capsys.readouterr().err
    assert f"No clinic database at {url}: check --url" in error
    assert f"python -m ketadash migrate --url {url}" in error
    assert not path.exists()
    assert not path.parent.exists()


@pytest.mark.parametrize("command", list(NEEDS_A_DATABASE))
def test_an_sqlite_database_without_tables_is_refused(command, tmp_path, capsys):
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    url = f"sqlite:///{path}"
    assert main([command, "--url", url, *NEEDS_A_DATABASE[command]]) == 1
    assert "No clinic database at" in capsys.readouterr().err
    get_engine(url).dispose()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


@pytest.mark.postgres
@pytest.mark.parametrize("command", list(NEEDS_A_DATABASE))
def test_a_postgres_schema_without_tables_is_refused(command, empty_schema_url, capsys):
    assert main([command, "--url", empty_schema_url, *NEEDS_A_DATABASE[command]]) == 1
    assert "No clinic database at" in capsys.readouterr().err
    assert tables_in(empty_schema_url) == []


@pytest.mark.postgres
def test_a_mistyped_postgres_database_name_is_refused(postgres_template, capsys):
    url, _schema = postgres_template
    server = url.split("?", 1)[0].rsplit("/", 1)[0]
    missing = spelt(f"{server}/ketadash_typo", "postgres")
    assert main(["settings", "--url", missing, "--site", "main"]) == 1
    assert "No clinic database at postgresql+psycopg://" in capsys.readouterr().err
    get_engine(f"{server}/ketadash_typo").dispose()


def test_migrate_still_creates_a_new_sqlite_database(tmp_path):
    path = tmp_path / "new" / "clinic.sqlite"
    assert main(["migrate", "--url", f"sqlite:///{path}"]) == 0
    assert path.is_file()
    get_engine(f"sqlite:///{path}").dispose()


def test_settings_are_stamped_with_now(sqlite_url):
    site = ["--code", "main", "--name", "Main", "--time-zone", "America/New_York"]
    assert main(["site", "--url", sqlite_url, *site]) == 0
    now = "2026-11-27T09:30-05:00"
    command = ["settings", "--url", sqlite_url, "--site", "main", "--now", now]
    assert main([*command, "hold_systolic=150"]) == 0
    with read_session(sqlite_url) as db:
        row = db.exec(select(SiteSetting).where(SiteSetting.name == "hold_systolic")).one()
    assert row.updated_at == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("written", "complaint"),
    [
        ("2026-11-27T09:30", "--now needs a time zone"),
        ("tomorrow", "'tomorrow' is not a moment"),
    ],
)
def test_now_must_be_an_aware_moment(sqlite_url, written, complaint, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["settings", "--url", sqlite_url, "--site", "main", "--now", written])
    assert exit_.value.code == 2
    assert complaint in capsys.readouterr().err


def test_display_commands_take_url_and_now_after_the_action(sqlite_url, capsys):
    site = ["--code", "main", "--name", "Main", "--time-zone", "America/New_York"]
    assert main(["site", "--url", sqlite_url, *site]) == 0
    now = ["--now", "2026-11-27T09:30-05:00"]
    add = ["display", "add", "--url", sqlite_url, *now, "--site", "main", "--name", "Recovery TV"]
    assert main(add) == 0
    assert "/wall?embed=true&display=" in capsys.readouterr().out
    assert main(["display", "list", "--url", sqlite_url]) == 0
    assert "Recovery TV\tactive" in capsys.readouterr().out
    assert main(["display", "revoke", "--url", sqlite_url, *now, "1"]) == 0
    assert main(["display", "--url", sqlite_url, "list"]) == 0
    assert "revoked 2026-11-27 14:30 UTC" in capsys.readouterr().out


def test_display_url_before_the_action_still_counts(sqlite_url, tmp_path, capsys):
    site = ["--code", "main", "--name", "Main", "--time-zone", "America/New_York"]
    assert main(["site", "--url", sqlite_url, *site]) == 0
    missing = f"sqlite:///{tmp_path / 'typo.sqlite'}"
    # The action's own --url, when given, wins over the one before it.
    assert main(["display", "--url", missing, "list", "--url", sqlite_url]) == 0
    assert main(["display", "--url", missing, "list"]) == 1
    assert "No clinic database at" in capsys.readouterr().err


def test_the_site_command_records_the_address_and_phone_drivers_see(sqlite_url, capsys):
    from ketadash.models import Site

    site = ["--code", "main", "--name", "Main", "--time-zone", "America/New_York"]
    assert main(["site", "--url", sqlite_url, *site, "--address", " 12 Main St ",
                 "--phone", "617-555-0100"]) == 0  # fmt: skip
    # Again without them: what was recorded stays.
    assert main(["site", "--url", sqlite_url, *site]) == 0
    with read_session(sqlite_url) as db:
        row = db.exec(select(Site)).one()
        assert (row.address, row.phone) == ("12 Main St", "617-555-0100")
    assert main(["site", "--url", sqlite_url, *site, "--code", "east", "--phone", " "]) == 1
    assert "phone is empty" in capsys.readouterr().err
    with read_session(sqlite_url) as db:
        assert [s.code for s in db.exec(select(Site)).all()] == ["main"]
