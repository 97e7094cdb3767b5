"""Alembic environment: runs against the URL given in the Config, else the settings' database."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import app.models  # noqa: F401  (every table on Base.metadata)
from app.db import Base
from app.public.search import include_name
from app.settings import get_settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,
            compare_type=True,
            include_name=include_name,  # autogenerate leaves the search index's own objects alone
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Migrations are trusted code: data migrations see every workspace's rows.
                connection.exec_driver_sql("SELECT set_config('minpan.system', 'on', true)")
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
