"""Command line: ``python -m ketadash migrate | demo | import | boosters`` and more."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path

from ketadash.db import DatabaseUnavailable, database_url, migrate


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
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

    staff = commands.add_parser("staff", help="add a staff member who can act on sessions")
    staff.add_argument("--url", help="database URL (default: KETADASH_DATABASE_URL)")
    staff.add_argument("--name", required=True)
    staff.add_argument("--role", required=True, help="nurse, lead or front_desk")
    staff.add_argument("--site", help="site code (default: works at every site)")

    settings = commands.add_parser(
        "settings", help="show a site's clinic settings, or override some (NAME=VALUE)"
    )
    settings.add_argument("--url", help="database URL (default: KETADASH_DATABASE_URL)")
    settings.add_argument("--site", required=True, help="site code")
    settings.add_argument("assignments", nargs="*", metavar="NAME=VALUE")

    load = commands.add_parser("import", help="load patients and sessions from CSV files")
    # Required: real patients must never land in the embedded demo by default.
    load.add_argument("--url", required=True, help="the clinic's database URL")
    load.add_argument("--patients", type=Path, required=True)
    load.add_argument("--sessions", type=Path, required=True)
    load.add_argument("--scores", type=Path)
    load.add_argument("--symptom-returns", type=Path)

    # --- boosters (issue 9) ---
    boosters = commands.add_parser(
        "boosters", help="the boosters worklist: who to call, most urgent first"
    )
    boosters.add_argument("--url", help="database URL (default: KETADASH_DATABASE_URL)")
    boosters.add_argument("--site", help="site code (default: every site)")
    boosters.add_argument(
        "--as-of",
        type=date.fromisoformat,
        help="the worklist as it stood that morning (YYYY-MM-DD): later history is ignored",
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
        if args.command == "migrate":
            migrate(url)
            print(f"schema is current: {url}")
        elif args.command == "demo":
            from ketadash.demo import build_demo_clinic

            summary = build_demo_clinic(
                url=url,
                sites=args.sites,
                chairs=args.chairs,
                patients=args.patients,
                history_days=args.history_days,
                seed=args.seed,
                now=args.now,
            )
            print(summary)
        elif args.command == "site":
            from ketadash.roster import ensure_chairs, ensure_site

            site_id = ensure_site(url=url, code=args.code, name=args.name, time_zone=args.time_zone)
            chairs = ensure_chairs(url=url, site_id=site_id, count=args.chairs)
            print(f"site {args.code!r} ({args.name}, {args.time_zone}): {chairs} chairs")
        elif args.command == "staff":
            from ketadash.roster import ensure_staff

            ensure_staff(url=url, name=args.name, role=args.role, site_code=args.site)
            print(f"{args.name} ({args.role}) can now be chosen under Acting as")
        elif args.command == "settings":
            return _settings(url=url, site_code=args.site, assignments=args.assignments)
        elif args.command == "boosters":
            return _boosters(
                url=url, site_code=args.site, as_of_day=args.as_of, everyone=args.all,
                output=args.format, now=args.now,
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
                )
            except ImportRejected as rejected:
                print(rejected, file=sys.stderr)
                return 1
            print(report)
    except DatabaseUnavailable as error:
        print(f"{error}\n({error.detail})", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"{error}. Nothing was changed.", file=sys.stderr)
        return 1
    return 0


def _settings(*, url: str, site_code: str, assignments: list[str]) -> int:
    from dataclasses import asdict

    from sqlmodel import select

    from ketadash.clock import utc_now
    from ketadash.db import read_session, write_session
    from ketadash.models import Site
    from ketadash.settings import InvalidSetting, load_clinic_settings, set_site_setting

    with read_session(url) as db:
        site_id = db.exec(select(Site.id).where(Site.code == site_code)).first()
    if site_id is None:
        print(f"There is no site with the code {site_code!r}.", file=sys.stderr)
        return 1
    try:
        with write_session(url) as db:
            for assignment in assignments:
                name, _, value = assignment.partition("=")
                set_site_setting(
                    db=db, site_id=site_id, name=name.strip(), value=value.strip(),
                    staff_id=None, now=utc_now(),
                )  # fmt: skip
    except InvalidSetting as error:
        print(f"{error} Nothing was changed.", file=sys.stderr)
        return 1
    with read_session(url) as db:
        for name, value in asdict(load_clinic_settings(db=db, site_id=site_id)).items():
            print(f"{name} = {value}")
    return 0


def _boosters(
    *,
    url: str,
    site_code: str | None,
    as_of_day: date | None,
    everyone: bool,
    output: str,
    now: datetime | None,
) -> int:
    """Print the boosters worklist exactly as the Boosters page computes it."""
    import pandas as pd
    from sqlmodel import select

    from ketadash.boosters import IN_CARE_FLAGS, WORKLIST_FLAGS, as_of_morning, sort_worklist
    from ketadash.clock import utc_now
    from ketadash.db import read_session
    from ketadash.histories import boosters_worklist
    from ketadash.models import Site

    with read_session(url) as db:
        query = select(Site.id, Site.time_zone).order_by(Site.id)
        if site_code is not None:
            query = query.where(Site.code == site_code)
        sites = db.exec(query).all()
        if not sites:
            print(f"There is no site with the code {site_code!r}.", file=sys.stderr)
            return 1
        moment = now or utc_now()
        flags = IN_CARE_FLAGS if everyone else WORKLIST_FLAGS
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
    if output == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif frame.empty:
        print("Nobody to call.")
    else:
        print(frame.astype(object).where(frame.notna(), "").to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
