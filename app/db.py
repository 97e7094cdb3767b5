"""Database engine, declarative base and session factory.

SQLAlchemy 2 in synchronous style: the same services run in web handlers (in Litestar's thread
pool), in Dramatiq actors and in the ``minpan`` command. Tenant scoping of every session is
installed by :mod:`app.tenants.scope`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

from sqlalchemy import DateTime, Engine, MetaData, Table, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from app.settings import Settings, get_settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_as_of: ContextVar[datetime | None] = ContextVar("minpan_as_of", default=None)


def utcnow() -> datetime:
    """Now, in UTC: the moment every transition, timeline entry, notice and audit event records —
    or, inside ``as_of``, the moment given there."""
    return _as_of.get() or datetime.now(UTC)


@contextmanager
def as_of(moment: datetime) -> Iterator[None]:
    """Record what happens inside as having happened at ``moment`` (aware, any zone). Only the demo
    uses it, to write its history on the days it happened: messages dispatched on earlier working
    days, and the deadline sweeps of every morning since."""
    token = _as_of.set(moment.astimezone(UTC))
    try:
        yield
    finally:
        _as_of.reset(token)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def make_engine(settings: Settings) -> Engine:
    if settings.is_sqlite:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            settings.database_url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=10,
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy emit BEGIN itself so that SAVEPOINTs work (pysqlite's own
            # transaction handling breaks them).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(settings.database_url, pool_size=10, max_overflow=20, pool_pre_ping=True)


@lru_cache(maxsize=4)
def engine_for(url: str) -> Engine:
    settings = get_settings()
    if url != settings.database_url:
        from dataclasses import replace

        settings = replace(settings, database_url=url)
    return make_engine(settings)


def get_engine() -> Engine:
    return engine_for(get_settings().database_url)


@lru_cache(maxsize=4)
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=engine_for(url), expire_on_commit=False)


def session_factory() -> sessionmaker[Session]:
    return _factory(get_settings().database_url)


@contextmanager
def system_session() -> Iterator[Session]:
    """A session for trusted code (CLI, actors, sign-in) that may read across workspaces.

    Commits on success, rolls back on error. Request handlers never use it: they get a session
    scoped to the signed-in user's current workspace (see app.tenants.scope).
    """
    from app.tenants.scope import TenantContext, bind_tenant

    session = session_factory()()
    bind_tenant(session, TenantContext.system_context())
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` once ``session``'s transaction has committed — the real COMMIT, not the
    release of a savepoint, which SQLAlchemy reports with the same ``after_commit`` event (a
    worker kicked at a savepoint's release ran before the rows it was sent for were visible).
    Never if the transaction rolls back."""
    done = False

    def committed(sess: Session) -> None:
        nonlocal done
        if done or sess.get_nested_transaction() is not None:
            return  # ran already, or a savepoint released: the transaction goes on
        done = True
        action()

    def rolled_back(sess: Session) -> None:
        nonlocal done
        if sess.get_nested_transaction() is None:
            done = True

    # Listeners cannot be removed while the event runs; sessions are short-lived.
    event.listen(session, "after_commit", committed)
    event.listen(session, "after_rollback", rolled_back)


# --- bulk writes ----------------------------------------------------------------------------------

BULK_ROWS = 200  # below this, an ordinary executemany is as fast


def _arrays(
    db: Session, table: Table, rows: Sequence[Mapping[str, Any]], names: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """The rows as one array parameter per column (each value through its column type's bind
    processing, e.g. UTC datetimes, sealed text), with the SQL casts that type them."""
    dialect = db.get_bind().dialect
    params: dict[str, Any] = {}
    casts: list[str] = []
    for i, name in enumerate(names):
        column = table.c[name]
        process = column.type.bind_processor(dialect)
        values = [row[name] for row in rows]
        params[f"p{i}"] = [process(v) for v in values] if process else values
        # %b: psycopg sends the array in binary, no text quoting of each of thousands of values.
        casts.append(f"%(p{i})b::{column.type.compile(dialect=dialect)}[]")
    return params, casts


def _with_defaults(table: Table, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows with the columns' Python-side defaults filled in, as ``table.insert()`` would."""
    given = set(rows[0])
    defaults: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if column.name in given or default is None or not (default.is_scalar or default.is_callable):
            continue
        arg = getattr(default, "arg", None)
        defaults[column.name] = arg(None) if default.is_callable and callable(arg) else arg
    return [{**defaults, **row} for row in rows]


def bulk_insert(db: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT many rows (all with the same keys) in the session's transaction.

    On PostgreSQL, from a few hundred rows on, ONE statement reads the rows from arrays
    (``INSERT … SELECT * FROM unnest(…)``): a multi-VALUES executemany sends a parameter per
    value and runs the table's statement triggers once per batch of 1,000 — the morning sweep's
    16,000 rungs took 1.7 s that way (docs/benchmarks.md). Elsewhere, or for a few rows, an
    ordinary executemany."""
    if not rows:
        return
    if db.get_bind().dialect.name != "postgresql" or len(rows) < BULK_ROWS:
        db.execute(table.insert(), list(rows))
        return
    rows = _with_defaults(table, rows)
    names = list(rows[0])
    params, casts = _arrays(db, table, rows, names)
    quote = db.get_bind().dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "  # noqa: S608  (identifiers of the model)
        f"SELECT * FROM unnest({', '.join(casts)})"
    )
    db.connection().exec_driver_sql(sql, params)


def bulk_update(db: Session, table: Table, key: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """UPDATE many rows by ``key`` (each row: the key and the columns to set), likewise: one
    ``UPDATE … FROM unnest(…)`` on PostgreSQL, an executemany elsewhere."""
    if not rows:
        return
    names = list(rows[0])
    values = [n for n in names if n != key]
    if db.get_bind().dialect.name != "postgresql" or len(rows) < BULK_ROWS:
        from sqlalchemy import bindparam

        statement = (
            table.update()
            .where(table.c[key] == bindparam(f"k_{key}"))
            .values({n: bindparam(f"k_{n}") for n in values})
        )
        db.execute(statement, [{f"k_{n}": row[n] for n in names} for row in rows])
        return
    params, casts = _arrays(db, table, rows, names)
    quote = db.get_bind().dialect.identifier_preparer.quote
    alias = ", ".join(quote(n) for n in names)
    sets = ", ".join(f"{quote(n)} = u.{quote(n)}" for n in values)
    sql = (
        f"UPDATE {quote(table.name)} AS t SET {sets} "  # noqa: S608  (identifiers of the model)
        f"FROM unnest({', '.join(casts)}) AS u({alias}) WHERE t.{quote(key)} = u.{quote(key)}"
    )
    db.connection().exec_driver_sql(sql, params)
