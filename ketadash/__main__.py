"""Command line: ``python -m ketadash migrate | demo | site | staff | settings | import |
display | boosters``.

Every command takes ``--url`` (default: ``KETADASH_DATABASE_URL``) in any of the
spellings ``database_url`` accepts. Only ``migrate`` and ``demo`` may create a
database; every other command refuses one that does not exist or has no tables,
so a mistyped URL creates nothing. Commands that depend on time take ``--now``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ketadash.db import (
    DatabaseUnavailable,
    NoClinicDatabase,
    database_url,
    display_url,
    migrate,
    require_clinic_database,
)

# The commands that may create the database they are pointed at.
CREATES_DATABASE = frozenset({"migrate", "demo"})
NOW_HELP = "the moment to act at, with a time zone, e.g. 2026-11-27T09:30-05:00 (default: now)"


def _moment(text: str) -> datetime:
    """The ``--now`` of every command that depends on time: an aware ISO 8601 moment."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a moment; write e.g. 2026-11-27T09:30-05:00"
        ) from error
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("--now needs a time zone, e.g. 2026-11-27T09:30+00:00")
    return moment


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ketadash", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    migrate_cmd = commands.add_parser("migrate", help="bring a database to the current schema")
    migrate_cmd.add_argument("--url", help="database URL (default: KETADASH_DATABASE_URL)")

    demo = commands.add_parser("demo", help="build the synthetic demo clinic")
    demo.add_argument("--url", help="database URL (default: KETADASH_DATABASE_URL)")
    demo.add_argument("--sites", type=int, default=2)
    demo.add_argument(
        "--chairs", type=int, help="chairs per site (default: enough for the patients)"
    )
    demo.add_argument("--patients", type=int, default=400)
    demo.add_argument("--history-days", type=int, default=730)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--now", type=_moment, help="the moment to lay today out around")

    site = commands.add_parser("site", help="add a site (idempotent) and make sure of its chairs")
    site.add_argument("--url", help="database URL (default: KETADASH_DATABASE_URL)")
    site.add_argument("--code", required=True, help="short code, e.g. main")
    site.add_argument("--name", required=True, help="what staff call it, e.g. 'Main Street'")
    site.add_argument("--time-zone", required=True, help="e.g. America/New_York")
    site.add_argument("--chairs", type=int, default=0, help="make sure it has this many chairs")
    site.add_argument("--address", help="where drivers collect patients (the driver's link)")
    site.add_argument("--phone", help="the number drivers call (the driver's link)")

    staff = commands.add_parser("staff", help="add a staff member who can act on sessions")
    staff.add_argument("--url", help="database URL (default: KETADASH_DATABASE_URL)")
    staff.add_argument("--name", required=True)
    staff.add_argument("--role", required=True, help="nurse, lead or front_desk")
    staff.add_argument("--site", help="site code (default: works at every site)")
    staff.add_argument("--email", help="the e-mail the clinic's sign-in gives them")

    settings = commands.add_parser(
        "settings", help="show a site's clinic settings, or override some (NAME=VALUE)"
    )
    settings.add_argument("--url", help="database URL (default: KETADASH_DATABASE_URL)")
    settings.add_argument("--site", required=True, help="site code")
    settings.add_argument("--now", type=_moment, help=NOW_HELP)
    settings.add_argument("assignments", nargs="*", metavar="NAME=VALUE")

    load = commands.add_parser("import", help="load patients and sessions from CSV files")
    # Required: real patients must never land in the embedded demo by default.
    load.add_argument("--url", required=True, help="the clinic's database URL")
    load.add_argument("--patients", type=Path, required=True)
    load.add_argument("--sessions", type=Path, required=True)
    load.add_argument("--scores", type=Path)
    load.add_argument("--symptom-returns", type=Path)
    load.add_argument("--add-chairs", action="store_true", help="add chairs the files name")
    # Future dates and plausibility are judged against this moment (issue 6 items 3 and 14).
    load.add_argument("--now", type=_moment, help=NOW_HELP)

    display = commands.add_parser("display", help="register, list or revoke wall displays")
    display.add_argument("--url", help="database URL (default: KETADASH_DATABASE_URL)")
    display.add_argument("--now", type=_moment, help=NOW_HELP)
    display_actions = display.add_subparsers(dest="display_action", required=True)
    # Every other command takes --url after its name, so each action takes it (and --now)
    # after its own; SUPPRESS keeps one given before the action when the action has none.
    after_action = argparse.ArgumentParser(add_help=False)
    after_action.add_argument(
        "--url", default=argparse.SUPPRESS, help="database URL (default: KETADASH_DATABASE_URL)"
    )
    after_action.add_argument("--now", type=_moment, default=argparse.SUPPRESS, help=NOW_HELP)
    display_add = display_actions.add_parser(
        "add", parents=[after_action], help="register a display; prints its address"
    )
    display_add.add_argument("--site", required=True, help="site code")
    display_add.add_argument("--name", required=True, help="e.g. 'Recovery TV'")
    display_add.add_argument(
        "--base-url", default="http://127.0.0.1:8501", help="the dashboard's address"
    )
    display_actions.add_parser(
        "list", parents=[after_action], help="every display, revoked ones too"
    )
    display_revoke = display_actions.add_parser(
        "revoke", parents=[after_action], help="blank a display's wall"
    )
    display_revoke.add_argument("id", type=int)

    # --- boosters (issue 9) ---
    boosters = commands.add_parser(
        "boosters", help="the boosters worklist: who to call, most urgent first"
    )
    boosters.add_argument("--url", help="database URL (default: KETADASH_DATABASE_URL)")
    boosters.add_argument("--site", help="site code (default: every site)")
    boosters.add_argument(
        "--as-of",
        type=date.fromisoformat,
        help="the worklist as it stood that morning (YYYY-MM-DD): later history is ignored; "
        "that morning's flags are stored, once (the Boosters and throughput pages read them)",
    )
    boosters.add_argument(
        "--until",
        type=date.fromisoformat,
        help="with --as-of: store the flags of every morning from --as-of to this day too",
    )
    boosters.add_argument(
        "--all", action="store_true", help="every patient in care, not only those to call"
    )
    boosters.add_argument("--format", choices=("table", "csv"), default="table")
    boosters.add_argument("--now", type=_moment, help="the moment to compute for (tests)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    url = database_url(args.url)
    try:
        if args.command not in CREATES_DATABASE:
            require_clinic_database(url)
        if args.command == "migrate":
            migrate(url)
            print(f"schema is current: {display_url(url)}")
        elif args.command == "demo":
            from ketadash.clock import utc_now
            from ketadash.demo import build_demo_clinic

            summary = build_demo_clinic(
                url=url,
                sites=args.sites,
                chairs=args.chairs,
                patients=args.patients,
                history_days=args.history_days,
                seed=args.seed,
                now=args.now or utc_now(),
            )
            print(summary)
        elif args.command == "site":
            from ketadash.roster import (
                ensure_chairs,
                ensure_site,
                set_site_contact,
                site_contact_values,
            )

            contact = site_contact_values(address=args.address, phone=args.phone)
            site_id = ensure_site(url=url, code=args.code, name=args.name, time_zone=args.time_zone)
            chairs = ensure_chairs(url=url, site_id=site_id, count=args.chairs)
            set_site_contact(url=url, site_id=site_id, values=contact)
            print(f"site {args.code!r} ({args.name}, {args.time_zone}): {chairs} chairs")
        elif args.command == "staff":
            from ketadash.roster import ensure_staff

            staff_id = ensure_staff(url=url, name=args.name, role=args.role, site_code=args.site)
            if args.email:
                from ketadash.auth import set_staff_email

                email = set_staff_email(url=url, staff_id=staff_id, email=args.email)
                print(f"{args.name} ({args.role}) signs in as {email}")
            else:
                print(f"{args.name} ({args.role}) is on the staff list")
        elif args.command == "display":
            return _display(args=args, url=url)
        elif args.command == "settings":
            return _settings(
                url=url, site_code=args.site, assignments=args.assignments, now=args.now
            )
        elif args.command == "boosters":
            return _boosters(
                url=url, site_code=args.site, as_of_day=args.as_of, everyone=args.all,
                output=args.format, now=args.now, until=args.until,
            )  # fmt: skip
        elif args.command == "import":
            from ketadash.importer import ImportRejected, import_files

            try:
                report = import_files(
                    url=url,
                    patients=args.patients,
                    sessions=args.sessions,
                    scores=args.scores,
                    symptom_returns=args.symptom_returns,
                    add_chairs=args.add_chairs,
                    now=args.now,
                )
            except ImportRejected as rejected:
                print(rejected, file=sys.stderr)
                return 1
            print(report)
    except NoClinicDatabase as error:
        print(f"{error}. Nothing was changed.", file=sys.stderr)
        return 1
    except DatabaseUnavailable as error:
        print(f"{error}\n({error.detail})", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"{error}. Nothing was changed.", file=sys.stderr)
        return 1
    return 0


def _display(*, args: argparse.Namespace, url: str) -> int:
    from ketadash import auth
    from ketadash.clock import utc_now

    now = args.now or utc_now()
    if args.display_action == "add":
        display_id, token = auth.register_display(
            url=url, site_code=args.site, name=args.name, now=now
        )
        base = args.base_url.rstrip("/")
        print(f"display {display_id} ({args.name}) registered. Open this address on the TV:")
        print(f"{base}/wall?embed=true&display={token}")
        print("The token is shown only now; revoke it with: python -m ketadash display revoke "
              f"{display_id}")  # fmt: skip
    elif args.display_action == "list":
        for entry in auth.list_displays(url=url):
            state = (
                f"revoked {entry.revoked_at:%Y-%m-%d %H:%M} UTC" if entry.revoked_at else "active"
            )
            print(f"{entry.id}\t{entry.site_code}\t{entry.name}\t{state}")
    elif not auth.revoke_display(url=url, display_id=args.id, now=now):
        print(f"There is no display {args.id}. Nothing was changed.", file=sys.stderr)
        return 1
    else:
        print(f"display {args.id} revoked: its wall blanks at its next refresh")
    return 0


def _settings(*, url: str, site_code: str, assignments: list[str], now: datetime | None) -> int:
    """Print the site's settings in force, after applying ``assignments`` in one transaction;
    each change is stamped ``now`` (default: the current moment)."""
    from dataclasses import asdict

    from sqlmodel import select

    from ketadash.clock import utc_now
    from ketadash.db import read_session, write_session
    from ketadash.models import Site
    from ketadash.settings import InvalidSetting, load_clinic_settings, set_site_settings

    moment = utc_now() if now is None else now
    with read_session(url) as db:
        site_id = db.exec(select(Site.id).where(Site.code == site_code)).first()
    if site_id is None:
        print(f"There is no site with the code {site_code!r}.", file=sys.stderr)
        return 1
    try:
        # The changes are checked together: raising an alert and the hold under it in one
        # command does not depend on their order.
        changes = {}
        for assignment in assignments:
            name, _, value = assignment.partition("=")
            changes[name.strip()] = value.strip()
        with write_session(url) as db:
            if changes:
                set_site_settings(
                    db=db, site_id=site_id, changes=changes, staff_id=None, now=moment
                )
    except InvalidSetting as error:
        print(f"{error} Nothing was changed.", file=sys.stderr)
        return 1
    with read_session(url) as db:
        for name, value in asdict(load_clinic_settings(db=db, site_id=site_id)).items():
            print(f"{name} = {value}")
    return 0


def _store_morning_flags(
    *, url: str, site_ids: list[int], first: date, last: date, now: datetime
) -> bool:
    """Store each site's flags for every morning from ``first`` to ``last``, saying on
    stderr which were stored; False (after saying why) when a morning has not come yet.

    A back-fill of many mornings fits each site's relief model on the first morning it
    writes and again every ``BACKFILL_REFIT_DAYS`` (the fit takes seconds on a large site
    and a month of history moves it little); a single morning fits its own, as the page's
    first open of the day does.
    """
    from datetime import timedelta

    from ketadash.booster_flags import BACKFILL_REFIT_DAYS, MorningNotYetCome, write_morning_flags
    from ketadash.boosters import ClinicRelief

    for site_id in site_ids:
        day = first
        fitted: tuple[date, ClinicRelief] | None = None
        while day <= last:
            if fitted is not None and (day - fitted[0]).days >= BACKFILL_REFIT_DAYS:
                fitted = None
            try:
                stored = write_morning_flags(
                    url=url,
                    site_id=site_id,
                    day=day,
                    now=now,
                    clinic=None if fitted is None else fitted[1],
                )
            except MorningNotYetCome as error:
                print(str(error), file=sys.stderr)
                return False
            if fitted is None and stored.clinic is not None:
                fitted = (day, stored.clinic)
            done = "stored" if stored.wrote else "already stored"
            print(
                f"Site {site_id}, morning of {day}: flags {done} ({len(stored.rows)} listed).",
                file=sys.stderr,
            )
            day += timedelta(days=1)
    return True


def _print_worklist(*, frame: Any, output: str) -> None:
    """The worklist on stdout: CSV, a table, or that nobody is to be called."""
    if output == "csv":
        from ketadash.exports import csv_text

        sys.stdout.write(csv_text(frame=frame))
    elif frame.empty:
        print("Nobody to call.")
    else:
        print(frame.astype(object).where(frame.notna(), "").to_string(index=False))


def _boosters(
    *,
    url: str,
    site_code: str | None,
    as_of_day: date | None,
    everyone: bool,
    output: str,
    now: datetime | None,
    until: date | None = None,
) -> int:
    """Print the boosters worklist exactly as the Boosters page computes it.

    With ``as_of_day``, each site's flags for that morning (and, with ``until``, every
    morning to that day) are stored if they are not yet; a line on stderr says which.
    """
    import pandas as pd
    from sqlmodel import col, select

    from ketadash.boosters import IN_CARE_FLAGS, WORKLIST_FLAGS, as_of_morning, sort_worklist
    from ketadash.clock import utc_now
    from ketadash.db import read_session
    from ketadash.histories import boosters_worklist
    from ketadash.models import Site

    with read_session(url) as db:
        query = select(col(Site.id), Site.time_zone).order_by(col(Site.id))
        if site_code is not None:
            query = query.where(Site.code == site_code)
        # A stored site always has its id.
        sites = [(site_id, zone) for site_id, zone in db.exec(query).all() if site_id is not None]
        if not sites:
            print(f"There is no site with the code {site_code!r}.", file=sys.stderr)
            return 1
        moment = now or utc_now()
        flags = IN_CARE_FLAGS if everyone else WORKLIST_FLAGS
    if until is not None and (as_of_day is None or until < as_of_day):
        print("--until needs --as-of, and a day on or after it.", file=sys.stderr)
        return 2
    if as_of_day is not None and not _store_morning_flags(
        url=url,
        site_ids=[site_id for site_id, _ in sites],
        first=as_of_day,
        last=until or as_of_day,
        now=moment,
    ):
        return 1
    with read_session(url) as db:
        # Each site's own morning when --as-of is given: sites may be in different zones.
        frames = [
            boosters_worklist(
                db=db,
                as_of=(as_of_morning(day=as_of_day, time_zone=zone) if as_of_day else moment),
                site_ids=[site_id],
                flags=flags,
            )
            for site_id, zone in sites
        ]
    filled = [f for f in frames if not f.empty] or frames[:1]
    frame = sort_worklist(pd.concat(filled, ignore_index=True)) if len(filled) > 1 else filled[0]
    _print_worklist(frame=frame, output=output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
