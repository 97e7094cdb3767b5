"""Row-level security for workspace-owned tables (PostgreSQL only), shared by the migrations.

A row is visible and writable only when its workspace is the transaction's
``minpan.workspace_id`` setting, or the transaction is marked ``minpan.system`` by trusted code
(app.tenants.scope). FORCE makes the policy bind the table owner too; only superusers bypass it,
so the application connects as an ordinary role.
"""

from __future__ import annotations

from alembic import op

RULE = (
    "current_setting('minpan.system', true) = 'on' "
    "OR workspace_id = NULLIF(current_setting('minpan.workspace_id', true), '')::integer"
)


def enable(*tables: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY workspace_isolation ON {table} USING ({RULE}) WITH CHECK ({RULE})")


def disable(*tables: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        op.execute(f"DROP POLICY IF EXISTS workspace_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
