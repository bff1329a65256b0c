"""Setting up a real clinic: sites, chairs and staff, from the command line."""

from __future__ import annotations

from sqlmodel import select

from ketadash.__main__ import main
from ketadash.db import read_session
from ketadash.models import Chair, Site, Staff
from ketadash.staff import list_staff


def test_a_clinic_is_set_up_from_the_command_line_and_again_changes_nothing(db_url, capsys):
    site = ["site", "--url", db_url, "--code", "main", "--name", "Main Street",
            "--time-zone", "America/New_York", "--chairs", "6"]  # fmt: skip
    nurse = ["staff", "--url", db_url, "--name", "Dana Reyes", "--role", "nurse", "--site", "main"]
    for _ in range(2):
        assert main(site) == 0
        assert main(nurse) == 0
    assert "6 chairs" in capsys.readouterr().out
    with read_session(db_url) as db:
        (site_row,) = db.exec(select(Site)).all()
        assert site_row.time_zone == "America/New_York"
        chairs = db.exec(select(Chair.name).where(Chair.site_id == site_row.id)).all()
        assert sorted(chairs) == [f"Chair {n}" for n in range(1, 7)]
        assert len(db.exec(select(Staff)).all()) == 1
    (member,) = list_staff(url=db_url, site_id=site_row.id)
    assert member.label == "Dana Reyes (nurse)"


def test_setup_mistakes_are_refused_with_a_reason(sqlite_url, capsys):
    assert main(["site", "--url", sqlite_url, "--code", "x", "--name", "X",
                 "--time-zone", "Mars/Olympus"]) == 1  # fmt: skip
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err
    assert main(["staff", "--url", sqlite_url, "--name", "Sam", "--role", "surgeon"]) == 1
    assert "unknown role 'surgeon'" in capsys.readouterr().err
    assert main(["staff", "--url", sqlite_url, "--name", "Sam", "--role", "nurse",
                 "--site", "nowhere"]) == 1  # fmt: skip
    assert "no site with the code 'nowhere'" in capsys.readouterr().err
