"""The README documents what the code declares."""

from pathlib import Path

from ketadash.settings import SETTINGS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_clinic_setting_is_documented_with_its_default():
    for spec in SETTINGS:
        assert f"| `{spec.name}` | {spec.default} |" in README, spec.name


def test_the_settings_table_gives_each_settings_bounds_and_their_source():
    for spec in SETTINGS:
        allowed = (
            f"{spec.allowed[0]}–{spec.allowed[1]}" if spec.allowed else ", ".join(spec.choices)
        )
        row = (
            f"| `{spec.name}` | {spec.default} | {allowed} | {spec.unit} | {spec.help} | "
            f"{spec.source} | {spec.bounds_source or '–'} |"
        )
        assert row in README, row


def test_readme_gives_the_two_commands_that_ci_runs():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    test_command = "python -m pip install -r requirements-dev.txt && python -m pytest"
    assert test_command in README
    assert test_command in ci
    assert "python -m pip install -r requirements.txt && python -m streamlit run dashboard.py" in (
        README
    )
