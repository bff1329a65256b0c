"""Alembic environment: the schema is ketadash.models; the URL comes from the caller."""

from alembic import context
from sqlmodel import SQLModel

import ketadash.models  # noqa: F401  (registers every table on SQLModel.metadata)
from ketadash.db import get_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = get_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by rebuilding it (copy, drop, rename). Dropping a table
            # that other rows refer to (staff, named by the status history) fails while
            # foreign keys are enforced, so enforcement is off for the migration and every
            # reference is checked before it commits. The pragma only takes effect outside
            # a transaction, hence on the driver's connection, before any BEGIN.
            connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            # transactional_ddl: SQLite can roll DDL back, so every revision of the run
            # is one transaction, and a refused check leaves the file as it was.
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=True,
                transactional_ddl=True if sqlite else None,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    _refuse_broken_references(connection)
            connection.commit()
        finally:
            if sqlite:
                try:
                    connection.rollback()
                finally:
                    connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")


def _refuse_broken_references(connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(
            f"The migration would leave {len(broken)} rows referring to missing rows "
            f"(first: {tuple(broken[0])}); nothing was changed."
        )


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
