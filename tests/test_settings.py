"""Clinic settings: declared once, overridable per site, refused when malformed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ketadash.__main__ import main
from ketadash.db import read_session, write_session
from ketadash.models import Route
from ketadash.settings import (
    SETTINGS,
    ClinicSettings,
    InvalidSetting,
    load_clinic_settings,
    parse_setting,
    set_site_setting,
)
from tests.utils.factories import make_clinic

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def test_every_setting_has_a_unit_help_and_source():
    assert len(SETTINGS) == len(ClinicSettings.__dataclass_fields__)
    for spec in SETTINGS:
        assert spec.unit and spec.help and spec.source, spec.name
        if isinstance(spec.default, int):
            low, high = spec.allowed
            assert low <= spec.default <= high, spec.name


def test_defaults_come_from_the_clinic_facts():
    settings = ClinicSettings()
    assert (settings.hold_systolic, settings.hold_diastolic) == (140, 90)
    assert settings.min_recovery_minutes(Route.IV) == 30
    assert settings.min_recovery_minutes(Route.ESKETAMINE) == 120
    assert settings.vitals_every_during_minutes == 10
    assert settings.vitals_every_after_minutes == 15


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("hold_systolic", "high", "whole number of mmHg"),
        ("hold_systolic", "-5", "between 100 and 200 mmHg"),
        ("hold_systolic", "1400", "between 100 and 200 mmHg"),
        ("vitals_every_during_minutes", "0", "between 1 and 60 min"),
        ("no_such_thing", "1", "no clinic setting"),
        ("wall_label", "full_name", "must be one of"),
    ],
)
def test_malformed_overrides_are_refused(name, value, message):
    with pytest.raises(InvalidSetting, match=message):
        parse_setting(name, value)


def test_a_site_override_applies_to_that_site_only(db_url):
    clinic = make_clinic(url=db_url)
    with write_session(db_url) as db:
        set_site_setting(db=db, site_id=clinic.site_id, name="min_recovery_iv_minutes",
                         value="45", staff_id=clinic.lead_id, now=NOW)  # fmt: skip
    with read_session(db_url) as db:
        assert load_clinic_settings(db=db, site_id=clinic.site_id).min_recovery_iv_minutes == 45
        assert load_clinic_settings(db=db, site_id=999).min_recovery_iv_minutes == 30


def test_settings_command_overrides_and_refuses(sqlite_url, capsys):
    make_clinic(url=sqlite_url)
    assert main(["settings", "--url", sqlite_url, "--site", "main", "hold_systolic=150"]) == 0
    assert "hold_systolic = 150" in capsys.readouterr().out
    assert main(["settings", "--url", sqlite_url, "--site", "main", "hold_systolic=x"]) == 1
    assert "Nothing was changed" in capsys.readouterr().err
    assert main(["settings", "--url", sqlite_url, "--site", "nowhere"]) == 1


def test_only_an_active_lead_changes_a_setting(db_url):
    from ketadash.settings import SettingRefused, change_site_setting, settings_in_force
    from tests.utils.factories import make_clinic

    ids = make_clinic(url=db_url)
    moment = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    with pytest.raises(SettingRefused, match="Only a clinic lead"):
        change_site_setting(url=db_url, site_id=ids.site_id, name="hold_systolic", value="150",
                            staff_id=ids.nurse_id, now=moment)  # fmt: skip
    assert change_site_setting(url=db_url, site_id=ids.site_id, name="hold_systolic",
                               value="150", staff_id=ids.lead_id, now=moment) == 150  # fmt: skip
    with read_session(db_url) as db:
        rows = {r.spec.name: r for r in settings_in_force(db=db, site_id=ids.site_id)}
    assert rows["hold_systolic"].overridden and rows["hold_systolic"].changed_by == "Lee Park"
    assert rows["hold_systolic"].changed_at == moment
    assert not rows["hold_diastolic"].overridden and rows["hold_diastolic"].changed_at is None
