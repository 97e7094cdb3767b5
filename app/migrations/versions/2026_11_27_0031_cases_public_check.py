"""public lists and search: the still-public check answered from an index (PostgreSQL)

Every public list and search checks each row it returns, on the case's primary key, that the case
is still public (``app.public.queries._still_public``): a search's 1,001 hits are 1,001 probes,
each reading the case's wide row from the table (~10 µs, more when it is not cached).
``ix_cases_public_check`` carries what the check and the row-level security policy read (state,
publication date, decline reason, unit), so each probe is an index-only scan (~6 µs measured,
7-9 ms less per search at 1,000,000 replies). The columns it carries change only with the
workflow's steps, which update indexed columns already. SQLite (no row-level security, small
data) needs none; the model does not declare it (tests/test_migrations.py knows).

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_cases_public_check "
            "ON cases (id) INCLUDE (state, published_at, decline_reason, workspace_id)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_cases_public_check")
