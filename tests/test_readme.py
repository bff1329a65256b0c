"""The README and docs/ document what the code declares, and the README stays short."""

import re
from pathlib import Path

from ketadash.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
README_PATH = ROOT / "README.md"
README = README_PATH.read_text()
DOCS = sorted((ROOT / "docs").glob("*.md"))
# The settings table lives in docs/settings.md (the README links to it).
SETTINGS_DOC = (ROOT / "docs" / "settings.md").read_text()
MAX_README_LINES = 350
# [text](target) and ![alt](target), not inside inline code.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _links(path: Path) -> list[str]:
    """Every link target written in ``path`` outside code fences and inline code."""
    targets, fence = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
            continue
        if not fence:
            targets.extend(LINK.findall(re.sub(r"`[^`]*`", "", line)))
    return targets


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of ``path``: lower case, punctuation dropped,
    spaces as hyphens."""
    anchors, fence = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and (heading := re.match(r"^#{1,6} (.+)$", line)):
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_every_clinic_setting_is_documented_with_its_default():
    for spec in SETTINGS:
        assert f"| `{spec.name}` | {spec.default} |" in SETTINGS_DOC, spec.name


def test_the_settings_table_gives_each_settings_bounds_and_their_source():
    for spec in SETTINGS:
        allowed = (
            f"{spec.allowed[0]}–{spec.allowed[1]}" if spec.allowed else ", ".join(spec.choices)
        )
        row = (
            f"| `{spec.name}` | {spec.default} | {allowed} | {spec.unit} | {spec.help} | "
            f"{spec.source} | {spec.bounds_source or '–'} |"
        )
        assert row in SETTINGS_DOC, row


def test_readme_gives_the_two_commands_that_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = "python -m pip install -r requirements-dev.txt && python -m pytest"
    assert test_command in README
    assert test_command in ci
    assert "python -m pip install -r requirements.txt && python -m streamlit run dashboard.py" in (
        README
    )


def test_the_readme_is_short_and_links_to_the_settings_table():
    lines = len(README.splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; depth goes to docs/"
    assert "docs/settings.md" in _links(README_PATH)


def test_every_doc_is_linked_from_the_readme():
    linked = {target.split("#")[0] for target in _links(README_PATH)}
    for doc in DOCS:
        assert f"docs/{doc.name}" in linked, f"docs/{doc.name} is not in the README's index"


def test_every_relative_link_in_the_readme_and_docs_resolves():
    for path in [README_PATH, *DOCS]:
        for target in _links(path):
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:: not checked here
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            assert resolved.is_file(), f"{path.name}: {target} names no file"
            if anchor and resolved.suffix == ".md":
                assert anchor in _anchors(resolved), f"{path.name}: {target} names no heading"
