"""Soak the saves: scripted saves in Chromium while other stations change the same site.

    python benchmarks/soak_saves.py [--saves 200] [--burners 1] [--postgres URL]

Builds a clinic of its own (one site, a patient per six saves, a few more patients the
other stations keep changing), starts ``streamlit run dashboard.py`` on it and drives
Debian's Chromium: one station (a browser context on Today) makes the scripted saves,
cycling check-in, PHQ-9, vitals, ride, start of the dose and vitals again, patient after
patient, while two more contexts keep Today and Recovery open (refreshing), a thread
of this process records vitals and rides at the same site through ketadash's own write
functions every second, and ``--burners`` processes keep the CPU busy.

Each save is pressed as a nurse would: when the screen says it is not saved, or says
nothing within ANSWER_SECONDS while what was typed is still there, she presses again
(at most three times). Then the database is read for every save. Prints, per kind and
in all: confirmed on the screen, "Already saved" answers, shown as not saved, first
presses that got no answer (and whether the save was in the database when the nurse
gave up waiting, and whether the browser sent the submit), and the verdicts: LOST
(confirmed or unanswered, yet not in the database), DOUBLED (in the database more than
once), saved without an answer, and never pressed (the script could not fill the form).

SQLite by default (a file under a temporary directory); ``--postgres`` runs on a schema
of its own in that PostgreSQL database, dropped at the end. Not a test: it takes minutes
and depends on the machine's load.
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from sqlmodel import func, select

from benchmarks.harness import free_port, launch_chromium, start_server, stop, wait_idle
from ketadash.clock import utc_now
from ketadash.config import normalise_url
from ketadash.db import DatabaseUnavailable, get_engine, migrate, read_session
from ketadash.lifecycle import LifecycleError, record_vitals, take_step
from ketadash.models import OutcomeScore, Ride, StatusChange, SubmittedForm, VitalsReading
from ketadash.rides import arrange_ride
from ketadash.vitals import Vitals
from ketadash.vocabulary import TRANSITIONS, Step
from tests.utils.factories import make_clinic, make_patient, make_session, mark_as_demo

SCREEN = {"width": 1920, "height": 1080}
KINDS = ("check-in", "PHQ-9", "vitals", "ride", "start", "vitals")
ANSWER_SECONDS = 20
PRESSES = 3
# The kinds saved by a form, and their submit buttons' labels.
FORMS = {"PHQ-9": "Save PHQ-9", "vitals": "Save vitals", "ride": "Save ride"}
CHURN_PATIENTS = 4


@dataclass
class Save:
    number: int
    kind: str
    patient: str
    session_id: int
    expected: str  # the words of the confirmation
    vitals: tuple[int, int, int] | None = None
    driver: str | None = None
    presses: list[str] = field(default_factory=list)  # saved / already / not saved / none
    # For each press that got no answer: how many times the save was in the database
    # when the nurse gave up waiting (0: the press had not reached it, or never would).
    unanswered_found: list[int] = field(default_factory=list)
    # For each press of a form that got no answer: whether the browser sent its submit
    # (a websocket message naming the form's submit button) after the click.
    unanswered_sent: list[bool] = field(default_factory=list)
    # For each press that got no answer: the alerts the screen showed then.
    unanswered_alerts: list[list[str]] = field(default_factory=list)
    in_database: int = 0


class Submits:
    """When the station's browser sent a form's submit to the server (monotonic seconds):
    a message naming a form's submit button (Streamlit's key ``FormSubmitter:<form>-<label>``;
    a trigger goes out only in the message that fires it)."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes]] = []

    def on_socket(self, socket) -> None:
        socket.on("framesent", self._on_frame)

    def _on_frame(self, payload) -> None:
        frame = payload if isinstance(payload, bytes) else payload.encode()
        if b"FormSubmitter:" in frame:
            self.sent.append((time.monotonic(), frame))

    def since(self, moment: float, label: str) -> bool:
        return any(at >= moment and label.encode() in frame for at, frame in self.sent)


SUBMITS = Submits()


def build_clinic(url: str, *, patients: int):
    """A demo-marked clinic: ``patients`` scheduled now (the scripted saves) and a few
    checked in (what the other stations keep changing)."""
    migrate(url)
    clinic = make_clinic(url=url, chairs=patients + CHURN_PATIENTS + 2)
    mark_as_demo(url)
    now = utc_now()
    scripted = []
    for n in range(patients):
        patient = make_patient(url=url, mrn=f"S{n:03d}", first="Soak", last=f"P{n:03d}",
                               site_id=clinic.site_id)  # fmt: skip
        session_id = make_session(url=url, clinic=clinic, patient_id=patient, chair_index=n,
                                  scheduled_start=now + timedelta(minutes=n),
                                  weight_kg=70.0)  # fmt: skip
        scripted.append((f"Soak P{n:03d}", session_id))
    churn = []
    for n in range(CHURN_PATIENTS):
        patient = make_patient(url=url, mrn=f"C{n:03d}", first="Churn", last=f"C{n:03d}",
                               site_id=clinic.site_id)  # fmt: skip
        session_id = make_session(url=url, clinic=clinic, patient_id=patient,
                                  chair_index=patients + n, scheduled_start=now,
                                  weight_kg=70.0)  # fmt: skip
        take_step(url=url, session_id=session_id, step=Step.CHECK_IN,
                  staff_id=clinic.other_nurse_id, expected_version=1)  # fmt: skip
        churn.append(session_id)
    return clinic, scripted, churn


def plan_saves(scripted: list[tuple[str, int]], count: int) -> list[Save]:
    saves: list[Save] = []
    for name, session_id in scripted:
        for kind in KINDS:
            if len(saves) == count:
                return saves
            n = len(saves)
            save = Save(number=n, kind=kind, patient=name, session_id=session_id, expected="")
            if kind == "check-in":
                save.expected = f"{name}: {TRANSITIONS[Step.CHECK_IN].done}."
            elif kind == "start":
                save.expected = f"{name}: {TRANSITIONS[Step.START_INFUSION].done}."
            elif kind == "PHQ-9":
                save.expected = "PHQ-9 saved: 10 (item 9: 0)."
            elif kind == "ride":
                save.driver = f"Driver {n:03d}"
                save.expected = "Ride saved."
            else:
                # Calm, and different for every save: found in the database by its values.
                save.vitals = (110 + n % 20, 70 + (n // 20) % 12, 60 + n % 30)
                s, d, hr = save.vitals
                save.expected = f"Vitals saved: BP {s}/{d}, HR {hr}."
            saves.append(save)
    return saves


class Churn(threading.Thread):
    """Another station at the same site: vitals and rides every ``every`` seconds."""

    def __init__(self, url: str, clinic, sessions: list[int], every: float) -> None:
        super().__init__(daemon=True)
        self.url, self.clinic, self.sessions, self.every = url, clinic, sessions, every
        self.stopping = threading.Event()
        self.writes = Counter()

    def run(self) -> None:
        rng = random.Random(7)
        while not self.stopping.wait(self.every):
            session_id = rng.choice(self.sessions)
            try:
                if rng.random() < 0.7:
                    vitals = Vitals(systolic=rng.randint(110, 130), diastolic=78,
                                    heart_rate=rng.randint(60, 90), spo2=98)  # fmt: skip
                    record_vitals(
                        url=self.url,
                        session_id=session_id,
                        staff_id=self.clinic.other_nurse_id,
                        vitals=vitals,
                    )
                    self.writes["vitals"] += 1
                else:
                    with read_session(self.url) as db:
                        ride = db.exec(select(Ride).where(Ride.session_id == session_id)).first()
                        version = ride.version if ride else None
                    arrange_ride(url=self.url, session_id=session_id,
                                 staff_id=self.clinic.other_nurse_id,
                                 expected_ride_version=version,
                                 driver_name="Churn Driver",
                                 driver_phone=f"555-{rng.randint(1000, 9999)}")  # fmt: skip
                    self.writes["ride"] += 1
            except (LifecycleError, DatabaseUnavailable) as error:
                self.writes[f"refused: {type(error).__name__}"] += 1


def alert(page, text: str):
    return page.get_by_test_id("stAlert").filter(has_text=text)


def choose(page, save: Save) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text="Patient").click()
    # The list draws only the options in sight: typing narrows it to the patient.
    page.keyboard.type(save.patient)
    page.get_by_role("option", name=re.compile(re.escape(save.patient))).first.click()
    page.get_by_text(re.compile(rf"^{re.escape(save.patient)} · ")).first.wait_for(timeout=60_000)
    wait_idle(page)


def fill(page, save: Save) -> None:
    if save.kind == "PHQ-9":
        page.get_by_label("Total (0–27)").fill("10")
        page.get_by_label("Item 9 (0–3)").fill("0")
    elif save.kind == "vitals":
        s, d, hr = save.vitals
        for label, value in (("Systolic", s), ("Diastolic", d), ("Heart rate", hr), ("SpO2", 98)):
            page.get_by_label(label, exact=True).fill(str(value))
    elif save.kind == "ride":
        expander = page.get_by_test_id("stExpander").filter(has_text="Ride home")
        if not expander.get_by_label("Driver's name").is_visible():
            expander.locator("summary").click()
        expander.get_by_label("Driver's name").fill(save.driver)


def button(page, save: Save):
    name = {
        "check-in": "Check in",
        "PHQ-9": "Save PHQ-9",
        "vitals": "Save vitals",
        "ride": "Save ride",
        "start": "Start dose",
    }[save.kind]
    return page.get_by_role("button", name=name, exact=True)


def still_typed(page, save: Save) -> bool:
    """Whether the form (or the step's button) is still there as the nurse left it."""
    try:
        if save.kind == "vitals":
            return page.get_by_label("Systolic", exact=True).input_value() == str(save.vitals[0])
        if save.kind == "PHQ-9":
            return page.get_by_label("Total (0–27)").input_value() == "10"
        if save.kind == "ride":
            return page.get_by_label("Driver's name").input_value() == save.driver
        return button(page, save).count() == 1
    except Exception:
        return False


def press(page, save: Save) -> str:
    """Press the save once; what the screen answered within ANSWER_SECONDS."""
    clicked = time.monotonic()
    button(page, save).click()
    deadline = time.monotonic() + ANSWER_SECONDS
    # A "Not saved" left from the press before is on screen until the new run ends.
    stale_not_saved = alert(page, "Not saved").count() > 0
    earliest_not_saved = time.monotonic() + (3 if stale_not_saved else 0)
    while time.monotonic() < deadline:
        if alert(page, save.expected).count():
            return "saved"
        if alert(page, "Already saved").count():
            return "already"
        if time.monotonic() >= earliest_not_saved and alert(page, "Not saved").count():
            wait_idle(page)
            return "not saved"
        page.wait_for_timeout(100)
    if save.kind in FORMS:
        save.unanswered_sent.append(SUBMITS.since(clicked, FORMS[save.kind]))
    texts = page.get_by_test_id("stAlert").all_inner_texts()
    save.unanswered_alerts.append([" ".join(t.split())[:120] for t in texts])
    return "none"


def make_save(page, save: Save, url: str) -> None:
    fill(page, save)
    for _ in range(PRESSES):
        answer = press(page, save)
        save.presses.append(answer)
        if answer == "none":
            save.unanswered_found.append(count_in_database(url, save))
        if answer in ("saved", "already"):
            wait_idle(page)
            return
        if answer == "none" and not still_typed(page, save):
            return  # the form went (saved, or redrawn): pressing again would be a new entry


def count_in_database(url: str, save: Save) -> int:
    with read_session(url) as db:
        if save.kind in ("check-in", "start"):
            target = "checked_in" if save.kind == "check-in" else "infusing"
            query = select(func.count(StatusChange.id)).where(
                StatusChange.session_id == save.session_id, StatusChange.to_status == target
            )
        elif save.kind == "PHQ-9":
            query = select(func.count(OutcomeScore.id)).where(
                OutcomeScore.session_id == save.session_id
            )
        elif save.kind == "ride":
            query = select(func.count(Ride.id)).where(
                Ride.session_id == save.session_id, Ride.driver_name == save.driver
            )
        else:
            s, d, hr = save.vitals
            query = select(func.count(VitalsReading.id)).where(
                VitalsReading.session_id == save.session_id,
                VitalsReading.systolic == s,
                VitalsReading.diastolic == d,
                VitalsReading.heart_rate == hr,
            )
        return db.exec(query).one()


def verdict(save: Save) -> str:
    confirmed = any(p in ("saved", "already") for p in save.presses)
    if save.in_database > 1:
        return "DOUBLED"
    if save.in_database == 1:
        return "saved, confirmed" if confirmed else "saved, no answer"
    if not save.presses:
        # The script failed to fill the form (it said so, with a screenshot): nothing was
        # pressed, so nothing could be lost; counted apart, not as a save.
        return "never pressed"
    if confirmed or save.presses[-1] == "none":
        return "LOST"
    return "shown as not saved"


def report(saves: list[Save], churn: Churn, elapsed: float, submitted: int) -> None:
    verdicts = Counter(verdict(s) for s in saves)
    first = Counter(s.presses[0] if s.presses else "not pressed" for s in saves)
    presses = Counter(p for s in saves for p in s.presses)
    print(f"\n{len(saves)} saves in {elapsed / 60:.1f} min ({sum(presses.values())} presses)")
    print("first press answered: " + ", ".join(f"{k} {v}" for k, v in sorted(first.items())))
    print("every press answered: " + ", ".join(f"{k} {v}" for k, v in sorted(presses.items())))
    print("by kind (saved confirmed / saved no answer / not saved / lost / doubled):")
    for kind in dict.fromkeys(KINDS):
        mine = [s for s in saves if s.kind == kind]
        v = Counter(verdict(s) for s in mine)
        print(f"  {kind:9s} {len(mine):4d}: {v['saved, confirmed']} / {v['saved, no answer']} / "
              f"{v['shown as not saved']} / {v['LOST']} / {v['DOUBLED']}")  # fmt: skip
    print(f"other stations' writes meanwhile: {dict(churn.writes)}")
    print(f"submitted_form rows: {submitted}")
    print("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
    print(f"LOST {verdicts['LOST']}  DOUBLED {verdicts['DOUBLED']}")
    for save in saves:
        if verdict(save) in ("LOST", "DOUBLED", "saved, no answer") or save.presses[:1] != [
            "saved"
        ]:
            found = (f" (in the database when unanswered: {save.unanswered_found}; "
                     f"submit sent: {save.unanswered_sent}; alerts: {save.unanswered_alerts})"
                     if save.unanswered_found else "")  # fmt: skip
            print(f"  #{save.number} {save.kind} {save.patient}: presses {save.presses}{found}, "
                  f"in the database {save.in_database}x -> {verdict(save)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--burners", type=int, default=1, help="CPU-burning processes")
    parser.add_argument("--churn-seconds", type=float, default=1.0)
    parser.add_argument("--postgres", help="a PostgreSQL URL to run on instead of SQLite")
    args = parser.parse_args()
    # Stopped from outside: still stop the server, the burners and the browser.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    workdir = Path(tempfile.mkdtemp(prefix="kd-soak-saves-"))
    schema = None
    if args.postgres:
        server_url = normalise_url(args.postgres)
        schema = f"ketadash_soak_{uuid.uuid4().hex[:8]}"
        with sa.create_engine(server_url).begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        joiner = "&" if "?" in server_url else "?"
        url = f"{server_url}{joiner}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{workdir / 'soak.sqlite'}"
    patients = -(-args.saves // len(KINDS))
    clinic, scripted, churn_sessions = build_clinic(url, patients=patients)
    saves = plan_saves(scripted, args.saves)
    print(f"database: {'PostgreSQL' if schema else 'SQLite'}; {patients} patients, "
          f"{args.saves} saves; {args.burners} CPU burner(s); logs in {workdir}")  # fmt: skip

    port = free_port()
    server = start_server(url, port, log=workdir / "streamlit.log", watch_files=False)
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(args.burners)
    ]
    churn = Churn(url, clinic, churn_sessions, args.churn_seconds)
    started = time.monotonic()
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            base = f"http://127.0.0.1:{port}"
            others = []
            for path in ("/today", "/recovery"):
                context = browser.new_context(viewport=SCREEN)
                other = context.new_page()
                other.goto(base + path)
                wait_idle(other)
                others.append(context)
            context = browser.new_context(viewport=SCREEN)
            page = context.new_page()
            page.on("websocket", SUBMITS.on_socket)
            page.set_default_timeout(60_000)
            page.goto(f"{base}/today")
            wait_idle(page)
            page.locator(".kd-lane-head").first.wait_for()
            churn.start()
            started = time.monotonic()
            chosen = None
            for save in saves:
                try:
                    if save.patient != chosen:
                        choose(page, save)
                        chosen = save.patient
                    make_save(page, save, url)
                except Exception as error:  # a timeout of the driving itself: say so, go on
                    shot = workdir / f"could-not-drive-{save.number}.png"
                    page.screenshot(path=str(shot))
                    first_line = str(error).splitlines()[0]
                    print(f"  #{save.number} {save.kind}: the script could not drive "
                          f"({first_line}); screenshot {shot}")  # fmt: skip
                    page.goto(f"{base}/today")
                    wait_idle(page)
                    chosen = None
                if save.number % 20 == 19:
                    elapsed = time.monotonic() - started
                    print(f"  {save.number + 1} saves, {elapsed:.0f} s", flush=True)
            elapsed = time.monotonic() - started
            churn.stopping.set()
            churn.join(timeout=10)
            for other in others:
                other.close()
            context.close()
            browser.close()
    finally:
        churn.stopping.set()
        for burner in burners:
            stop(burner)
        stop(server)
    for save in saves:
        save.in_database = count_in_database(url, save)
    with read_session(url) as db:
        submitted = db.exec(select(func.count()).select_from(SubmittedForm)).one()
    report(saves, churn, elapsed, submitted)
    get_engine(url).dispose()
    if schema:
        with sa.create_engine(normalise_url(args.postgres)).begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
