"""public search: a unit's rows newest first (PostgreSQL)

A search within one unit (``/search?q=小区&unit=horqin``) read the whole bitmap of the word's hits
and kept the unit's (300 ms at 1,000,000 replies). ``ix_public_terms_unit_published`` lets it walk
that unit's rows newest first and stop at the 1,001st hit, as the unfiltered search walks the date
index (app/public/queries.py). SQLite searches its FTS5 table and needs nothing.

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_public_terms_unit_published "
            "ON public_terms (unit_id, published_at, case_id)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_public_terms_unit_published")
