"""assignments: the sweep reads its rows through a partial index holding exactly the ladder

``ix_assignments_sweep`` (0019) indexed every owed lead assignment (~490,000 of 1,000,000 in the
bench, 15 MB) by ``(supervised_for IS DISTINCT FROM due_date, due_date)``. PostgreSQL estimated
the boolean column's share badly (all of them), so from one ANALYZE to the next it chose between
that index (~0.3 s for the due rows) and a parallel scan of the whole table (~0.6 s), for the
sweep's decision and the hand-written statement alike (docs/benchmarks.md, "Deadline sweep").
``ix_assignments_ladder`` puts the condition into the index's predicate: it holds only the lead
assignments still owed and not yet supervised for their current due date (the sweep's own WHERE,
``app.escalation.services._on_ladder``), ~27,000 rows, 272 kB, so the estimate is exact and the
plan stable. A 督办单's fan-out (``supervised_for``) takes the row out of it; an extension (a new
due date) puts it back.

Built concurrently, outside a transaction (docs/operations.md: new indexes on big tables), then
the old index dropped the same way. The previous release's query has the same WHERE and reads the
new index too. SQLite (the embedded default) gets the same index with its own spelling.

Revision ID: 0034
Revises: 0033
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWED = (
    "'pending', 'handling', 'awaiting_signoff', 'return_drafted', 'extension_requested', "
    "'extension_pending', 'explanation_requested'"
)


def _spelling() -> tuple[str, str]:
    return ("IS DISTINCT FROM", "true") if op.get_bind().dialect.name == "postgresql" else ("IS NOT", "1")


def upgrade() -> None:
    distinct, true = _spelling()
    ladder = (
        "ix_assignments_ladder ON assignments (due_date) "
        f"WHERE is_lead IS {true} AND state IN ({OWED}) AND supervised_for {distinct} due_date"
    )
    if op.get_bind().dialect.name != "postgresql":
        op.execute(f"CREATE INDEX IF NOT EXISTS {ladder}")
        op.execute("DROP INDEX IF EXISTS ix_assignments_sweep")
        return
    with op.get_context().autocommit_block():
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {ladder}")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_assignments_sweep")


def downgrade() -> None:
    distinct, true = _spelling()
    op.execute(
        f"CREATE INDEX IF NOT EXISTS ix_assignments_sweep ON assignments ((supervised_for {distinct} due_date), "
        f"due_date) WHERE is_lead IS {true} AND state IN ({OWED})"
    )
    op.execute("DROP INDEX IF EXISTS ix_assignments_ladder")
