"""Migrations build the schema (the tests use nothing else), go down cleanly, and match the models."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import app.models  # noqa: F401  (all tables)
from app import migrate
from app.db import Base
from app.public.search import include_name
from app.settings import get_settings
from tests.conftest import IS_POSTGRES


def _scratch_url(tmp_path) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    """An empty database beside the test one: a file on SQLite, a schema of its own on PostgreSQL."""
    if not IS_POSTGRES:
        return f"sqlite:///{tmp_path / 'migrations.sqlite3'}", None
    schema = f"mig_{uuid.uuid4().hex[:8]}"
    base = get_settings().database_url
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", (admin, schema)


def _drop(handle) -> None:  # type: ignore[no-untyped-def]
    if handle:
        admin, schema = handle
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_upgrade_from_empty_to_head_and_down_to_base_and_up_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url, handle = _scratch_url(tmp_path)
    try:
        migrate.upgrade(url)
        assert migrate.current_revision(url) == migrate.head_revision()
        engine = create_engine(url)
        tables = set(inspect(engine).get_table_names())
        assert {"workspaces", "users", "memberships", "user_sessions", "audit_events"} <= tables
        migrate.downgrade(url, "base")
        assert migrate.current_revision(url) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(url)
        assert migrate.current_revision(url) == migrate.head_revision()
        engine.dispose()
    finally:
        _drop(handle)


def _modelled(name: str | None, type_: str, parents: object = None) -> bool:
    # The sweep's partial index (0034), the dashboard's trigger-kept live set (0026, a
    # PostgreSQL table read through app.supervision.queries.SUMMARY) and the public still-public
    # check's covering index (0031, PostgreSQL) have no model.
    unmodelled = ("ix_assignments_ladder", "supervision_live", "ix_cases_public_check")
    return name not in unmodelled and include_name(name, type_, parents)


def test_models_and_migrations_agree() -> None:
    """A model change without its migration fails here."""
    engine = create_engine(get_settings().database_url)
    with engine.connect() as conn:
        # The search index's FTS5 table (SQLite) and expression index (PostgreSQL) have no model,
        # nor have the objects named in ``_modelled``.
        opts = {"compare_type": False, "include_name": _modelled}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    engine.dispose()
    assert diff == []


@pytest.mark.skipif(not IS_POSTGRES, reason="row-level security exists on PostgreSQL only")
def test_postgres_workspace_tables_have_forced_row_level_security() -> None:
    """Every table of a WorkspaceOwned model has the policy, forced; the app is no superuser."""
    from app.tenants.models import WorkspaceOwned

    owned = {m.class_.__tablename__ for m in Base.registry.mappers if issubclass(m.class_, WorkspaceOwned)}
    assert {"memberships", "audit_events", "cases", "assignments", "attachments"} <= owned
    engine = create_engine(get_settings().database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, c.relforcerowsecurity, count(p.policyname) FROM pg_class c "
                "LEFT JOIN pg_policies p ON p.tablename = c.relname AND p.policyname = 'workspace_isolation' "
                "WHERE c.relname = ANY(:names) AND c.relkind = 'r' GROUP BY c.relname, c.relforcerowsecurity"
            ),
            {"names": sorted(owned)},
        ).all()
        superuser = conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar()
    engine.dispose()
    assert {name: (forced, policies) for name, forced, policies in rows} == {t: (True, 1) for t in owned}
    assert superuser is False, "the app must not connect as a superuser: superusers bypass row-level security"
