"""The wall display and the Recovery page in Chromium.

A nurse's "Ride has arrived" on /recovery reaches an open wall in another browser
without a reload; no name, MRN, phone or date of birth reaches the wall's HTML or
its websocket; the kiosk view has no Streamlit chrome and nothing to type; more
than twelve people page by themselves; the wall comes back after a server restart.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from ketadash.clock import utc_now
from ketadash.db import get_engine, read_session, write_session
from ketadash.demo import build_demo_clinic
from ketadash.demo.people import ALIAS_NAMES, ALIAS_WORDS
from ketadash.models import CareFlag, Patient, Ride, Site, Staff, StaffRole, TreatmentSession
from ketadash.models import SessionStatus as S
from ketadash.public import load_public_recovery_area
from ketadash.rides import arrange_ride, load_rides
from tests.browser.conftest import (
    CHROMIUM_ARGS,  # noqa: F401 (documents how the shared browser is launched)
    SCREEN,
    screenshot,
    start_server,
    wait_for_app_idle,
)

pytestmark = pytest.mark.browser

# A change redraws the wall within a second or two; 20 s is generous for a loaded machine.
WALL_CHANGE_WAIT_MS = 20_000
# With no change the wall still redraws each minute (its clock).
WALL_TICK_WAIT_MS = 80_000
# Streamlit's client backs off while reconnecting; it tries again within about a minute.
RECONNECT_WAIT_MS = 90_000
CLINICAL_WORDS = [
    *(re.escape(flag.value.replace("_", " ")) for flag in CareFlag),
    *(re.escape(flag.value) for flag in CareFlag),
    "mg",
    "mg/kg",
    "mmHg",
    "bpm",
    "SpO2",
    "PHQ-9",
    "item 9",
    "Systolic",
]


@dataclass(frozen=True)
class WallClinic:
    url: str
    first_code: str
    first_id: int
    second_code: str
    # A patient at the first site, ready to go, ride arranged but not here.
    waiting_session: int
    waiting_name: str
    waiting_label: str


def _now() -> datetime:
    return utc_now()


@pytest.fixture(scope="module")
def wall_clinic(tmp_path_factory) -> WallClinic:
    """A demo clinic of its own: the first site has a patient waiting for their ride, the
    second site has fourteen people in recovery (more than one screenful)."""
    path = tmp_path_factory.mktemp("wall-db") / "demo.sqlite"
    url = f"sqlite:///{path}"
    build_demo_clinic(url=url, patients=120, history_days=30, now=_now())
    now = _now()
    with write_session(url) as db:
        sites = db.exec(select(Site).order_by(Site.id)).all()
        first, second = sites[0], sites[1]
        nurse = db.exec(
            select(Staff).where(Staff.site_id == first.id, Staff.role == StaffRole.NURSE)
        ).first()
        today = db.exec(
            select(TreatmentSession)
            .where(
                TreatmentSession.site_id == first.id,
                TreatmentSession.scheduled_start >= now - timedelta(hours=10),
                TreatmentSession.scheduled_start <= now + timedelta(hours=10),
                TreatmentSession.status.in_([S.SCHEDULED, S.RECOVERY, S.READY]),
            )
            .order_by(TreatmentSession.scheduled_start)
        ).all()
        waiting = today[0]
        waiting_id = waiting.id
        db.execute(
            update(TreatmentSession)
            .where(TreatmentSession.id == waiting_id)
            .values(
                status=S.READY,
                checked_in_at=now - timedelta(minutes=120),
                infusion_started_at=now - timedelta(minutes=110),
                infusion_ended_at=now - timedelta(minutes=70),
                ready_at=now - timedelta(minutes=20),
            )
        )
        db.execute(update(Ride).where(Ride.session_id == waiting_id).values(driver_name=""))
        patient = db.get(Patient, waiting.patient_id)
        waiting_name = f"{patient.first_name} {patient.last_name}"
        crowd = db.exec(
            select(TreatmentSession.id)
            .where(
                TreatmentSession.site_id == second.id,
                TreatmentSession.scheduled_start >= now - timedelta(hours=12),
                TreatmentSession.scheduled_start <= now + timedelta(hours=12),
                TreatmentSession.status.not_in([S.RECOVERY, S.READY]),
            )
            .limit(14)
        ).all()
        for n, session_id in enumerate(crowd):
            db.execute(
                update(TreatmentSession)
                .where(TreatmentSession.id == session_id)
                .values(status=S.RECOVERY, infusion_ended_at=now - timedelta(minutes=n))
            )
        codes = (first.code, first.id, second.code, nurse.id)
    ride = load_rides(url=url, session_ids=[waiting_id]).get(waiting_id)
    arrange_ride(url=url, session_id=waiting_id, staff_id=codes[3],
                 expected_ride_version=ride.version if ride else None,
                 driver_name="Pat Driver", driver_phone="555-0142",
                 expected_pickup_at=now + timedelta(minutes=30))  # fmt: skip
    area = load_public_recovery_area(url=url, site_code=codes[0], now=_now())
    [label] = [p.label for p in area.patients if p.place.value == "waiting_for_ride"]
    get_engine(url).dispose()
    return WallClinic(
        url=url,
        first_code=codes[0],
        first_id=codes[1],
        second_code=codes[2],
        waiting_session=waiting_id,
        waiting_name=waiting_name,
        waiting_label=label,
    )


@pytest.fixture(scope="module")
def wall_server(wall_clinic, tmp_path_factory):
    server = start_server(database_url=wall_clinic.url, log_dir=tmp_path_factory.mktemp("logs"))
    yield server
    server.stop()


def _tile(page, label: str):
    return page.locator(".kdw-tile").filter(
        has=page.locator(".kdw-label", has_text=re.compile(f"^{re.escape(label)}$"))
    )


def _updated(page) -> str:
    return page.locator(".kdw-updated").inner_text()


def _open_wall(context, base_url: str, code: str, *, embed: bool = True):
    page = context.new_page()
    page.set_default_timeout(30_000)
    loads: list[str] = []
    page.on("load", lambda: loads.append(page.url))
    page.goto(f"{base_url}/wall?site={code}" + ("&embed=true" if embed else ""))
    wait_for_app_idle(page)
    page.locator(".kdw-updated").wait_for()
    return page, loads


def test_ride_arrived_on_recovery_shows_on_the_wall_without_a_reload(
    browser, wall_server, wall_clinic
):
    from playwright.sync_api import expect

    wall_context = browser.new_context(viewport=SCREEN)
    nurse_context = browser.new_context(viewport=SCREEN)
    try:
        wall, loads = _open_wall(wall_context, wall_server.base_url, wall_clinic.first_code)
        tile = _tile(wall, wall_clinic.waiting_label)
        expect(tile).to_have_attribute("data-place", "waiting_for_ride")
        expect(tile).to_contain_text("Ready — waiting for ride")

        nurse = nurse_context.new_page()
        nurse.set_default_timeout(30_000)
        nurse.goto(f"{wall_server.base_url}/recovery?site={wall_clinic.first_id}")
        wait_for_app_idle(nurse)
        card = nurse.locator(f'.kr-card[data-session="{wall_clinic.waiting_session}"]')
        expect(card).to_contain_text("Pat Driver")
        _choose(nurse, "Patient", re.compile(re.escape(wall_clinic.waiting_name)))
        screenshot(nurse, "recovery-page")
        nurse.get_by_role("button", name="Ride has arrived").click()
        expect(
            nurse.get_by_test_id("stAlert").filter(has_text="Pat Driver is here.")
        ).to_be_visible()
        expect(card).to_have_attribute("data-ride", "arrived")

        expect(tile).to_have_attribute("data-place", "ride_arrived", timeout=WALL_CHANGE_WAIT_MS)
        expect(tile).to_contain_text("Ride has arrived")
        assert len(loads) == 1, f"the wall reloaded: {loads}"
        screenshot(wall, "wall-ride-arrived")
        wait_for_app_idle(nurse)
        nurse.locator('[data-testid="stMain"]').evaluate("main => main.scrollTo(0, 0)")
        screenshot(nurse, "recovery-after-arrival")
    finally:
        wall_context.close()
        nurse_context.close()


def _choose(page, label: str, option) -> None:
    box = page.get_by_test_id("stSelectbox").filter(has_text=label)
    box.click()
    page.get_by_role("option", name=option).first.click()
    wait_for_app_idle(page)


def _personal_strings(url: str) -> set[str]:
    """Every patient's name, MRN, phone and date of birth, and every driver's name and phone."""
    found: set[str] = set()
    with read_session(url) as db:
        for first, last, mrn, phone, born in db.exec(
            select(
                Patient.first_name,
                Patient.last_name,
                Patient.mrn,
                Patient.phone,
                Patient.date_of_birth,
            )
        ):
            found |= {f"{first} {last}", f"{last}, {first}", mrn}
            if phone:
                found |= {phone, re.sub(r"\D", "", phone)}
            if born:
                found |= {born.isoformat(), born.strftime("%m/%d/%Y"), born.strftime("%d %b %Y")}
        for name, phone in db.exec(select(Ride.driver_name, Ride.driver_phone)):
            if name:
                found.add(name)
            if phone:
                found.add(phone)
    return found


def _names_on_the_wall(url: str, code: str) -> set[str]:
    """First and last names of the people the wall shows, less words an alias may use."""
    area_words = {w.lower() for w in (*ALIAS_WORDS, *ALIAS_NAMES, "Recovery", "Chair")}
    now = _now()
    with read_session(url) as db:
        site = db.exec(select(Site).where(Site.code == code)).one()
        rows = db.exec(
            select(Patient.first_name, Patient.last_name)
            .join(TreatmentSession, TreatmentSession.patient_id == Patient.id)
            .where(
                TreatmentSession.site_id == site.id,
                TreatmentSession.status.in_([S.RECOVERY, S.READY]),
                TreatmentSession.scheduled_start >= now - timedelta(hours=24),
            )
        ).all()
    return {name for row in rows for name in row if name.lower() not in area_words}


def test_no_name_mrn_phone_or_birth_date_reaches_the_wall(browser, wall_server, wall_clinic):
    personal = _personal_strings(wall_clinic.url)
    assert len(personal) > 300
    for code in (wall_clinic.first_code, wall_clinic.second_code):
        context = browser.new_context(viewport=SCREEN)
        frames: list[bytes] = []

        def on_socket(socket, frames=frames):
            socket.on(
                "framereceived",
                lambda payload: frames.append(
                    payload if isinstance(payload, bytes) else payload.encode()
                ),
            )

        try:
            page = context.new_page()
            page.on("websocket", on_socket)
            page.goto(f"{wall_server.base_url}/wall?site={code}&embed=true")
            wait_for_app_idle(page)
            first = _updated(page)
            # At least one self-refresh (the minute's), so its websocket frames are in too.
            page.wait_for_function(
                "t => document.querySelector('.kdw-updated')?.innerText !== t",
                arg=first,
                timeout=WALL_TICK_WAIT_MS,
            )
            wait_for_app_idle(page)
            assert page.locator(".kdw-tile").count() > 0
            seen_html = page.content()
            seen_text = page.locator("body").inner_text()
        finally:
            context.close()
        assert frames, "no websocket traffic was captured"
        traffic = b"\n".join(frames).decode("utf-8", errors="replace")
        # The picture itself travels in these frames, so looking in them means something.
        assert "kdw-tile" in traffic
        for where, text in (("HTML", seen_html), ("text", seen_text), ("websocket", traffic)):
            leaked = sorted(s for s in personal if s in text)
            assert not leaked, f"{where} of /wall?site={code} carries personal data: {leaked[:5]}"
            for name in _names_on_the_wall(wall_clinic.url, code):
                assert not re.search(rf"\b{re.escape(name)}\b", text), (where, name)
            # Nor any care flag, dose, vitals or score.
            for word in CLINICAL_WORDS:
                assert not re.search(rf"\b{word}\b", text, re.IGNORECASE), (where, word)


def test_kiosk_view_has_no_chrome_and_nothing_to_type(browser, wall_server, wall_clinic):
    from playwright.sync_api import expect

    context = browser.new_context(viewport=SCREEN)
    try:
        page, _ = _open_wall(context, wall_server.base_url, wall_clinic.first_code)
        for test_id in (
            "stSidebar",
            "stSidebarNav",
            "stToolbar",
            "stMainMenu",
            "stAppDeployButton",
            "stHeader",
            "stExpandSidebarButton",
        ):
            expect(page.get_by_test_id(test_id)).to_be_hidden()
        expect(page.get_by_role("button", name="Deploy")).to_be_hidden()
        visible_controls = page.locator("input:visible, textarea:visible, button:visible")
        expect(visible_controls).to_have_count(0)
        expect(page.locator("h1.kdw-site")).to_contain_text("Recovery")
        expect(page.locator(".kdw-clock")).to_have_text(re.compile(r"^\d\d:\d\d$"))
        expect(page.locator(".kdw-updated")).to_have_text(re.compile(r"^updated \d\d:\d\d:\d\d$"))
        # A wall for one site shows nothing of the other.
        expect(page.locator(".kdw")).to_have_attribute("data-site", wall_clinic.first_code)
        screenshot(page, "wall")
    finally:
        context.close()


def test_more_than_twelve_page_by_themselves_without_scrolling(browser, wall_server, wall_clinic):
    from playwright.sync_api import expect

    context = browser.new_context(viewport=SCREEN)
    try:
        page, _ = _open_wall(context, wall_server.base_url, wall_clinic.second_code)
        count = len(
            load_public_recovery_area(
                url=wall_clinic.url, site_code=wall_clinic.second_code, now=_now()
            ).patients
        )
        assert count > 12
        expect(page.locator(".kdw-paging")).to_have_text(re.compile(r"Page \d of 2"))
        tiles = page.locator(".kdw-tile")
        assert 1 <= tiles.count() <= 12
        for index in range(tiles.count()):
            box = tiles.nth(index).bounding_box()
            assert box["y"] + box["height"] <= SCREEN["height"], "a tile is below the screen"
        for paging in ("Page 1 of 2", "Page 2 of 2"):
            expect(page.locator(".kdw-paging")).to_have_text(paging, timeout=30_000)
            if paging == "Page 1 of 2":
                screenshot(page, "wall-twelve")
        expect(page.locator(".kdw-tile")).to_have_count(count - 12)
    finally:
        context.close()


def test_the_wall_comes_back_after_a_server_restart(browser, wall_clinic, tmp_path):
    from playwright.sync_api import expect

    path = tmp_path / "restart.sqlite"
    shutil.copy(wall_clinic.url.removeprefix("sqlite:///"), path)
    url = f"sqlite:///{path}"
    server = start_server(database_url=url, log_dir=tmp_path)
    port = int(server.base_url.rsplit(":", 1)[1])
    context = browser.new_context(viewport=SCREEN)
    try:
        # The very first visit to a fresh server is the wall itself (the deep-link trap).
        page, loads = _open_wall(context, server.base_url, wall_clinic.first_code)
        expect(_tile(page, wall_clinic.waiting_label)).to_be_visible()
        server.stop()
        # The wall has seen the server go before a new one answers on the same port.
        page.wait_for_selector(
            '[data-testid="stApp"]:not([data-test-connection-state="CONNECTED"])',
            state="attached",
            timeout=RECONNECT_WAIT_MS,
        )
        server = start_server(database_url=url, log_dir=tmp_path, port=port)
        before = _updated(page)
        page.wait_for_function(
            "t => document.querySelector('.kdw-updated')?.innerText !== t",
            arg=before,
            timeout=RECONNECT_WAIT_MS,
        )
        expect(_tile(page, wall_clinic.waiting_label)).to_be_visible()
        assert len(loads) == 1, f"the wall was reloaded: {loads}"
        screenshot(page, "wall-after-restart")
    finally:
        context.close()
        server.stop()
        get_engine(url).dispose()
