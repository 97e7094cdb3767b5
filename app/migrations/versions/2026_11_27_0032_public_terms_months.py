"""public search: the full-text index also knows each row's month, so it answers a window itself

A search for a word in a few per cent of the replies asks the full-text index for its hits among
the newest rows only (``app.public.queries._indexed``, a window ``published_at >= since``). The
planner can combine the GIN bitmap with a bitmap of the date index only when it expects many
hits; for several terms it multiplies their shares (供暖 温度: 195 rows expected, 12,507 found),
reads every hit's block of the table (12,300 blocks at 1,000,000 replies) and drops those before
the window. This GIN index has a second column, the month of publication (UTC) as a one-lexeme
``tsvector`` (``@202611``, ``public_terms_month``), so a window is one index condition —
``tsv @@ 供暖 & 温度 AND public_terms_month(published_at) @@ (@202511 | … | @202611)`` — and the
index returns only the window's hits: the blocks read are theirs (2,617). A query on ``tsv``
alone uses the same index as before (a GIN index answers any of its columns). No row is
rewritten; the index is built concurrently (~40 s at 1,000,000 replies; publications and
searches go on meanwhile), then the old one is dropped.

SQLite (FTS5, small data) is unchanged.

Revision ID: 0032
Revises: 0031
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Immutable (an index expression): the month in UTC by arithmetic, no locale-dependent to_char.
MONTH = """CREATE OR REPLACE FUNCTION public_terms_month(published timestamp with time zone)
    RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_to_tsvector(ARRAY['@' || (extract(year FROM published AT TIME ZONE 'UTC') * 100
        + extract(month FROM published AT TIME ZONE 'UTC'))::integer::text]) $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(MONTH)
    # Built without blocking publications (docs/operations.md: new indexes on big tables
    # concurrently, outside a transaction); searches use the old index until it is dropped.
    with op.get_context().autocommit_block():
        op.execute("SET maintenance_work_mem = '256MB'")
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_public_terms_tsv_month ON public_terms "
            "USING gin (tsv, public_terms_month(published_at))"
        )
        op.execute("RESET maintenance_work_mem")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_public_terms_tsv")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE INDEX IF NOT EXISTS ix_public_terms_tsv ON public_terms USING gin (tsv)")
    op.execute("DROP INDEX IF EXISTS ix_public_terms_tsv_month")
    op.execute("DROP FUNCTION IF EXISTS public_terms_month(timestamp with time zone)")
