"""Clinic settings: declared once, overridable per site, refused when malformed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ketadash.__main__ import main
from ketadash.db import read_session, write_session
from ketadash.models import Route
from ketadash.settings import (
    SETTINGS,
    SETTINGS_BY_NAME,
    ClinicSettings,
    InvalidSetting,
    change_site_setting,
    load_clinic_settings,
    parse_setting,
    set_site_setting,
    setting_change_problems,
    settings_in_force,
    settings_problems,
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
        ("hold_systolic", "-5", "between 120 and 160 mmHg"),
        ("hold_systolic", "1400", "between 120 and 160 mmHg"),
        ("vitals_every_during_minutes", "0", "between 5 and 15 min"),
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


# --- unsafe values and settings that contradict each other (safety review) -----------------


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("min_recovery_esketamine_minutes", "60", "Spravato label: at least 2 h"),
        ("phq9_item9_flag_at", "3", "any item 9 answer of 1 or more"),
        ("alert_spo2_below", "80", "Aldrete"),
        ("vitals_every_during_minutes", "60", "BP peaks 30–40 min"),
        ("dose_tolerance_percent", "50", "another dose"),
        ("hold_systolic", "200", "180 alert"),
        ("alert_systolic", "120", "Murrough 2013"),
    ],
)
def test_unsafe_values_accepted_before_are_refused_with_the_reason_for_the_bound(
    name, value, reason
):
    problems = setting_change_problems(in_force=ClinicSettings(), changes={name: value})
    assert problems and any(reason in problem for problem in problems), problems
    with pytest.raises(InvalidSetting, match=name):
        parse_setting(name, value)


def test_every_number_has_a_reason_for_its_bounds():
    for spec in SETTINGS:
        if isinstance(spec.default, int):
            assert spec.bounds_source, spec.name


def test_the_item9_flag_is_fixed_at_one():
    assert SETTINGS_BY_NAME["phq9_item9_flag_at"].allowed == (1, 1)
    assert setting_change_problems(in_force=ClinicSettings(),
                                   changes={"phq9_item9_flag_at": "1"}) == []  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"alert_heart_rate_low": 60, "alert_heart_rate_high": 60},
         "alert_heart_rate_low (60 bpm) must be below alert_heart_rate_high (60 bpm)"),
        ({"hold_systolic": 200, "alert_systolic": 120},
         "hold_systolic (200 mmHg) must be below alert_systolic (120 mmHg)"),
        ({"hold_diastolic": 100, "alert_diastolic": 100},
         "hold_diastolic (100 mmHg) must be below alert_diastolic (100 mmHg)"),
        ({"vitals_every_during_minutes": 60, "planned_infusion_minutes": 40},
         "vitals_every_during_minutes (60 min) must be shorter than planned_infusion_minutes"),
        ({"recheck_after_alert_minutes": 10, "vitals_every_during_minutes": 5},
         "recheck_after_alert_minutes (10 min) must be at most vitals_every_during_minutes"),
        ({"vitals_every_after_minutes": 30, "min_recovery_iv_minutes": 20},
         "vitals_every_after_minutes (30 min) must be at most min_recovery_iv_minutes"),
    ],
)  # fmt: skip
def test_related_settings_are_checked_against_each_other(changes, reason):
    from dataclasses import replace

    problems = settings_problems(settings=replace(ClinicSettings(), **changes))
    assert any(problem.startswith(reason) for problem in problems), problems


def test_the_defaults_break_no_rule():
    assert settings_problems(settings=ClinicSettings()) == []


def test_a_change_is_checked_against_the_settings_in_force(db_url):
    ids = make_clinic(url=db_url)
    change_site_setting(url=db_url, site_id=ids.site_id, name="alert_systolic", value="160",
                        staff_id=ids.lead_id, now=NOW)  # fmt: skip
    with pytest.raises(
        InvalidSetting,
        match=r"hold_systolic \(160 mmHg\) must be below "
        r"alert_systolic \(160 mmHg\)",
    ) as refused:
        change_site_setting(url=db_url, site_id=ids.site_id, name="hold_systolic",
                            value="160", staff_id=ids.lead_id, now=NOW)  # fmt: skip
    with read_session(db_url) as db:
        in_force = load_clinic_settings(db=db, site_id=ids.site_id)
    assert in_force.hold_systolic == 140
    # The screen asks the same function before the write and shows the same words.
    assert refused.value.problems == setting_change_problems(
        in_force=in_force, changes={"hold_systolic": "160"}
    )


def test_settings_command_checks_its_changes_together(sqlite_url, capsys):
    make_clinic(url=sqlite_url)
    assert main(["settings", "--url", sqlite_url, "--site", "main", "hold_systolic=160"]) == 0
    capsys.readouterr()
    # Alone, an alert at 160 contradicts the hold at 160; with the hold lowered in the same
    # command it does not, whichever comes first.
    assert main(["settings", "--url", sqlite_url, "--site", "main", "alert_systolic=160"]) == 1
    assert "must be below alert_systolic" in capsys.readouterr().err
    assert main(["settings", "--url", sqlite_url, "--site", "main", "alert_systolic=160",
                 "hold_systolic=150"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "hold_systolic = 150" in out and "alert_systolic = 160" in out


def test_a_stored_value_outside_todays_bounds_is_not_in_force(db_url):
    """A value stored before the bounds were tightened falls back to the default."""
    from ketadash.models import SiteSetting

    ids = make_clinic(url=db_url)
    with write_session(db_url) as db:
        db.add(SiteSetting(site_id=ids.site_id, name="min_recovery_esketamine_minutes",
                           value="60", updated_at=NOW))  # fmt: skip
    with read_session(db_url) as db:
        assert (
            load_clinic_settings(db=db, site_id=ids.site_id).min_recovery_minutes(Route.ESKETAMINE)
            == 120
        )


# --- every change kept: who, when, site, name, old value, new value -----------------------


def test_each_change_is_kept_with_who_when_and_the_old_value(db_url):
    from ketadash.settings import setting_history

    ids = make_clinic(url=db_url)
    first, second = NOW, NOW + timedelta(hours=2)
    change_site_setting(url=db_url, site_id=ids.site_id, name="hold_systolic", value="150",
                        staff_id=ids.lead_id, now=first)  # fmt: skip
    change_site_setting(url=db_url, site_id=ids.site_id, name="hold_systolic", value="130",
                        staff_id=ids.lead_id, now=second)  # fmt: skip
    with pytest.raises(InvalidSetting):
        change_site_setting(url=db_url, site_id=ids.site_id, name="hold_systolic",
                            value="200", staff_id=ids.lead_id, now=second)  # fmt: skip
    with read_session(db_url) as db:
        history = setting_history(db=db, site_id=ids.site_id)
        assert setting_history(db=db, site_id=999) == []
    assert [(h.changed_at, h.changed_by, h.name, h.old_value, h.new_value) for h in history] == [
        (second, "Lee Park", "hold_systolic", "150", "130"),
        (first, "Lee Park", "hold_systolic", "140", "150"),
    ]


def test_a_refused_change_leaves_no_history(sqlite_url):
    from sqlmodel import select

    from ketadash.models import SettingChange

    make_clinic(url=sqlite_url)
    assert main(["settings", "--url", sqlite_url, "--site", "main", "hold_systolic=150",
                 "alert_systolic=999"]) == 1  # fmt: skip
    with read_session(sqlite_url) as db:
        assert db.exec(select(SettingChange)).all() == []
    assert main(["settings", "--url", sqlite_url, "--site", "main", "hold_systolic=150",
                 "alert_systolic=170"]) == 0  # fmt: skip
    with read_session(sqlite_url) as db:
        rows = db.exec(select(SettingChange).order_by(SettingChange.id)).all()
    assert [(r.name, r.old_value, r.new_value, r.changed_by) for r in rows] == [
        ("hold_systolic", "140", "150", None),
        ("alert_systolic", "180", "170", None),
    ]


def test_two_leads_changing_a_hold_and_its_alert_at_once_cannot_contradict(db_url, monkeypatch):
    """Forced interleaving: the first lead has read the settings in force (inside its
    transaction) before the second starts. Each change alone is sound (hold 160 under the
    alert at 180; alert 160 over the hold at 140); together they would contradict."""
    import threading
    import time

    from sqlmodel import select

    from ketadash import settings as settings_module
    from ketadash.models import SettingChange

    ids = make_clinic(url=db_url)
    first_has_read = threading.Event()
    original = settings_module.load_clinic_settings

    def load_then_pause(*, db, site_id):
        loaded = original(db=db, site_id=site_id)
        if threading.current_thread().name == "first" and not first_has_read.is_set():
            first_has_read.set()
            time.sleep(0.5)  # the second lead's change arrives now
        return loaded

    monkeypatch.setattr(settings_module, "load_clinic_settings", load_then_pause)
    outcomes: dict[str, object] = {}

    def change(name, value):
        if threading.current_thread().name == "second":
            first_has_read.wait(timeout=10)
        try:
            outcomes[threading.current_thread().name] = change_site_setting(
                url=db_url, site_id=ids.site_id, name=name, value=value,
                staff_id=ids.lead_id, now=NOW,
            )  # fmt: skip
        except InvalidSetting as refused:
            outcomes[threading.current_thread().name] = refused

    threads = [
        threading.Thread(target=change, args=("hold_systolic", "160"), name="first"),
        threading.Thread(target=change, args=("alert_systolic", "160"), name="second"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes["first"] == 160
    assert isinstance(outcomes["second"], InvalidSetting)
    assert "hold_systolic (160 mmHg) must be below alert_systolic (160 mmHg)" in str(
        outcomes["second"]
    )
    with read_session(db_url) as db:
        in_force = original(db=db, site_id=ids.site_id)
        assert (in_force.hold_systolic, in_force.alert_systolic) == (160, 180)
        assert [r.name for r in db.exec(select(SettingChange))] == ["hold_systolic"]


def test_the_screen_is_told_of_a_stored_value_that_is_not_in_force(db_url):
    from ketadash.models import SiteSetting

    ids = make_clinic(url=db_url)
    with write_session(db_url) as db:
        db.add(SiteSetting(site_id=ids.site_id, name="phq9_item9_flag_at", value="3",
                           updated_at=NOW))  # fmt: skip
    with read_session(db_url) as db:
        rows = {r.spec.name: r for r in settings_in_force(db=db, site_id=ids.site_id)}
    assert (rows["phq9_item9_flag_at"].value, rows["phq9_item9_flag_at"].stored) == (1, "3")
    assert rows["hold_systolic"].stored is None
