"""Deployment configuration, read once from the environment.

Clinical thresholds are not here: they are clinic settings (``ketadash.settings``),
changeable per site without a deploy. This module only says where the data lives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "db" / "ketadash.sqlite"
DATABASE_URL_VARIABLE = "KETADASH_DATABASE_URL"
PUBLIC_URL_VARIABLE = "KETADASH_PUBLIC_URL"
DRIVER_PAGE_ONLY_VARIABLE = "KETADASH_DRIVER_PAGE_ONLY"


@dataclass(frozen=True, kw_only=True)
class DeploymentConfig:
    """Where the clinic's database is, whether it is the embedded demo, and how drivers
    reach their status links."""

    database_url: str
    embedded: bool
    # The address a driver's phone reaches this clinic's driver page at (drivers' links are
    # made on it); None: the address the staff browser is using.
    public_url: str | None = None
    # This process serves the driver's page and nothing else (the one facing the internet).
    driver_page_only: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_config() -> DeploymentConfig:
    """Read ``KETADASH_DATABASE_URL``; without it, the embedded SQLite file under ``db/``.

    The embedded database is the demo clinic: it is built on first start. A database
    named by the variable is a real deployment and never gets demo rows on its own.
    """
    url = os.environ.get(DATABASE_URL_VARIABLE, "").strip()
    public_url = os.environ.get(PUBLIC_URL_VARIABLE, "").strip() or None
    flag = os.environ.get(DRIVER_PAGE_ONLY_VARIABLE, "").strip().lower()
    driver_page_only = flag in ("1", "true", "yes", "on")
    return DeploymentConfig(
        database_url=normalise_url(url) if url else f"sqlite:///{DEFAULT_SQLITE_PATH}",
        embedded=not url,
        public_url=public_url,
        driver_page_only=driver_page_only,
    )


class PublicUrlInvalid(ValueError):
    """``KETADASH_PUBLIC_URL`` is not an address a phone can open; the message says why."""


def public_base_url(text: str) -> str:
    """``KETADASH_PUBLIC_URL`` as the base of drivers' links: ``https://host[/path]``, no
    trailing slash. Raises ``PublicUrlInvalid`` for anything a phone could not open."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise PublicUrlInvalid(
            f"{PUBLIC_URL_VARIABLE} is {text!r}, not a web address: it should look like "
            "https://rides.clinic.example"
        )
    if parts.query or parts.fragment:
        raise PublicUrlInvalid(
            f"{PUBLIC_URL_VARIABLE} is {text!r}: leave out the part after ? or #"
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whichever spelling the operator wrote."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
