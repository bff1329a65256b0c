"""Stored booster flags: written once a morning, idempotent, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from sqlmodel import func, select

from ketadash.__main__ import main
from ketadash.booster_flags import (
    MorningNotYetCome,
    read_morning_flags,
    todays_flags,
    write_morning_flags,
)
from ketadash.db import read_session
from ketadash.models import BoosterFlagMorning, BoosterFlagRow
from tests.test_booster_follow_up import the_clinic

NOW = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)
# A morning on which patients A–E are due soon (their series ended 20–24 January).
MORNING = date(2026, 2, 1)


def counts(url: str) -> tuple[int, int]:
    with read_session(url) as db:
        mornings = db.exec(select(func.count()).select_from(BoosterFlagMorning)).one()
        rows = db.exec(select(func.count()).select_from(BoosterFlagRow)).one()
    return mornings, rows


def test_a_morning_is_written_once_and_read_back_after(db_url):
    clinic = the_clinic(db_url)
    first = write_morning_flags(url=db_url, site_id=clinic.site_id, day=MORNING, now=NOW)
    assert first.wrote
    assert len(first.rows) > 0
    assert set(first.rows["flag"]) <= {"relapsed", "call_now", "overdue", "due_soon", "booked"}
    assert first.rows["booster_due"].notna().all()
    assert first.rows["anchor_session_id"].notna().all()
    assert counts(db_url) == (1, len(first.rows))

    again = write_morning_flags(url=db_url, site_id=clinic.site_id, day=MORNING, now=NOW)
    assert not again.wrote
    assert again.written_at == first.written_at
    assert again.rows.equals(first.rows)
    assert counts(db_url) == (1, len(first.rows))


def test_a_stored_morning_does_not_change_with_later_history(db_url):
    clinic = the_clinic(db_url)
    first = write_morning_flags(url=db_url, site_id=clinic.site_id, day=MORNING, now=NOW)
    # A symptom return reported the day before, recorded after the morning was written.
    patient = next(p for p, name in clinic.named.items() if name == "E")
    clinic.symptoms_back(patient, date(2026, 1, 31))
    again = write_morning_flags(url=db_url, site_id=clinic.site_id, day=MORNING, now=NOW)
    assert again.rows.equals(first.rows)


def test_a_morning_not_yet_come_is_refused_and_nothing_is_written(db_url):
    clinic = the_clinic(db_url)
    with pytest.raises(MorningNotYetCome, match="has not come yet"):
        write_morning_flags(url=db_url, site_id=clinic.site_id, day=date(2026, 3, 21), now=NOW)
    assert counts(db_url) == (0, 0)
    with read_session(db_url) as db:
        assert read_morning_flags(db=db, site_id=clinic.site_id, day=date(2026, 3, 21)) is None


def test_the_first_look_of_the_day_writes_today_and_later_looks_read_it(db_url):
    clinic = the_clinic(db_url)
    first = todays_flags(url=db_url, site_id=clinic.site_id, now=NOW)
    later = todays_flags(url=db_url, site_id=clinic.site_id, now=NOW.replace(hour=20))
    assert first.wrote and not later.wrote
    assert first.day == later.day == date(2026, 3, 20)
    assert counts(db_url)[0] == 1


def test_two_first_looks_at_once_write_one_morning(db_url):
    clinic = the_clinic(db_url)
    results, errors = [], []

    def look() -> None:
        try:
            results.append(
                write_morning_flags(url=db_url, site_id=clinic.site_id, day=MORNING, now=NOW)
            )
        except Exception as error:  # the test reports it
            errors.append(error)

    threads = [threading.Thread(target=look) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(r.wrote for r in results) == [False, True]
    assert results[0].rows.equals(results[1].rows)
    assert counts(db_url) == (1, len(results[0].rows))


def test_the_command_stores_the_mornings_it_is_given_once(db_url, capsys):
    clinic = the_clinic(db_url)
    argv = ["boosters", "--url", db_url, "--as-of", "2026-02-01", "--now", NOW.isoformat()]
    assert main([*argv, "--until", "2026-02-03"]) == 0
    err = capsys.readouterr().err
    assert err.count("flags stored") == 3
    mornings, rows = counts(db_url)
    assert mornings == 3
    assert main(argv) == 0
    assert "already stored" in capsys.readouterr().err
    assert counts(db_url) == (mornings, rows)
    with read_session(db_url) as db:
        stored = read_morning_flags(db=db, site_id=clinic.site_id, day=MORNING)
    assert stored is not None and len(stored.rows) > 0


def test_a_back_fill_fits_the_relief_model_once_every_refit_period(db_url, monkeypatch):
    import ketadash.boosters
    from ketadash.booster_flags import BACKFILL_REFIT_DAYS

    the_clinic(db_url)
    fits = []
    fit = ketadash.boosters.clinic_relief
    monkeypatch.setattr(
        ketadash.boosters, "clinic_relief", lambda **kwargs: fits.append(1) or fit(**kwargs)
    )
    first, mornings = date(2026, 1, 20), BACKFILL_REFIT_DAYS + 2
    last = date.fromordinal(first.toordinal() + mornings - 1)
    argv = ["boosters", "--url", db_url, "--as-of", str(first), "--until", str(last)]
    assert main([*argv, "--now", NOW.isoformat()]) == 0
    # The first morning's fit, and one more when the refit period has passed; the
    # worklist printed for the last morning fits its own.
    assert counts(db_url)[0] == mornings
    assert len(fits) == 3


def test_the_command_refuses_a_range_that_runs_backwards(db_url, capsys):
    the_clinic(db_url)
    argv = ["boosters", "--url", db_url, "--as-of", "2026-02-03", "--until", "2026-02-01"]
    assert main([*argv, "--now", NOW.isoformat()]) == 2
    assert "--until needs --as-of" in capsys.readouterr().err
    assert counts(db_url) == (0, 0)


def listings(url: str) -> list[tuple]:
    from ketadash.models import BoosterListing

    with read_session(url) as db:
        rows = db.exec(select(BoosterListing)).all()
        return sorted(
            (
                r.site_id,
                r.patient_id,
                r.anchor_session_id,
                r.listed_on,
                r.listed_due,
                r.relapsed_on,
                r.relapsed_due,
            )
            for r in rows
        )


def write_mornings(url: str, site_id: int, days: list[date]) -> None:
    for day in days:
        write_morning_flags(url=url, site_id=site_id, day=day, now=NOW)


JANUARY_AND_FEBRUARY = [date.fromordinal(date(2026, 1, 15).toordinal() + n) for n in range(45)]


def test_the_listings_do_not_depend_on_the_order_the_mornings_are_written(db_url):
    from sqlmodel import delete

    from ketadash.db import write_session
    from ketadash.models import BoosterListing

    clinic = the_clinic(db_url)
    write_mornings(db_url, clinic.site_id, JANUARY_AND_FEBRUARY)
    in_order = listings(db_url)
    assert any(row[5] is not None for row in in_order)  # a relapse was flagged
    with write_session(db_url) as db:
        for table in (BoosterListing, BoosterFlagRow, BoosterFlagMorning):
            db.exec(delete(table))

    # A back-fill of older mornings after later ones were written.
    write_mornings(db_url, clinic.site_id, list(reversed(JANUARY_AND_FEBRUARY)))

    assert listings(db_url) == in_order


def test_migration_0014_fills_the_listings_as_the_mornings_keep_them(db_url):
    from alembic import command

    from ketadash.db import alembic_config

    clinic = the_clinic(db_url)
    write_mornings(db_url, clinic.site_id, JANUARY_AND_FEBRUARY)
    kept = listings(db_url)
    assert kept

    command.downgrade(alembic_config(db_url), "0013")
    command.upgrade(alembic_config(db_url), "head")

    assert listings(db_url) == kept
