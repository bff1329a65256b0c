"""Deployment configuration, read once from the environment.

Clinical thresholds are not here: they are clinic settings (``ketadash.settings``),
changeable per site without a deploy. This module only says where the data lives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "db" / "ketadash.sqlite"
DATABASE_URL_VARIABLE = "KETADASH_DATABASE_URL"


@dataclass(frozen=True, kw_only=True)
class DeploymentConfig:
    """Where the clinic's database is, and whether it is the embedded demo."""

    database_url: str
    embedded: bool

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_config() -> DeploymentConfig:
    """Read ``KETADASH_DATABASE_URL``; without it, the embedded SQLite file under ``db/``.

    The embedded database is the demo clinic: it is built on first start. A database
    named by the variable is a real deployment and never gets demo rows on its own.
    """
    url = os.environ.get(DATABASE_URL_VARIABLE, "").strip()
    if url:
        return DeploymentConfig(database_url=normalise_url(url), embedded=False)
    return DeploymentConfig(database_url=f"sqlite:///{DEFAULT_SQLITE_PATH}", embedded=True)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whichever spelling the operator wrote."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
