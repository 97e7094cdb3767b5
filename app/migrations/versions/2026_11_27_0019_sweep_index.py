"""the deadline sweep at a million open assignments: supervised_for, its index, the fan-out mark

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-27

- ``assignments.supervised_for``: the due date a 督办单 was issued for (set by whoever issues it,
  in the same transaction). The sweep reads only the owed lead assignments still on the ladder
  (``supervised_for IS DISTINCT FROM due_date``) through ``ix_assignments_sweep`` instead of
  probing every open assignment's escalations; the ``NOT EXISTS`` on escalations stays the truth.
  The comparison is an index column because, as a partial-index predicate alone, the planner can
  neither estimate nor use it; ``is_lead IS true`` is spelled as SQLAlchemy writes it.
- ``escalations.fanned_out_at``: when the rung's timeline entry, notices, audit event and
  document were written (by the per-unit fan-out job, app/escalation/services.py ``fan_out``);
  NULL while pending, found through a small partial index.
- ``ix_escalations_assignment_id`` goes: ``ix_escalations_assignment_rung_due`` starts with the
  same column, and every index costs the sweep's bulk insert.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWED = (
    "'pending', 'handling', 'awaiting_signoff', 'return_drafted', 'extension_requested', "
    "'extension_pending', 'explanation_requested'"
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("assignments") as batch_op:
        batch_op.add_column(sa.Column("supervised_for", sa.Date(), nullable=True))
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.add_column(sa.Column("fanned_out_at", sa.DateTime(), nullable=True))
        batch_op.drop_index("ix_escalations_assignment_id")
    if postgres:
        # The migration runs as the table owner; row-level security would hide rows from a
        # non-owner, so say plainly that this is the system.
        op.execute("SELECT set_config('minpan.system', 'on', true)")
    op.execute(
        "UPDATE assignments SET supervised_for = (SELECT max(e.due_date) FROM escalations e "
        "WHERE e.assignment_id = assignments.id AND e.rung = 'supervise') "
        "WHERE EXISTS (SELECT 1 FROM escalations e WHERE e.assignment_id = assignments.id "
        "AND e.rung = 'supervise')"
    )
    op.execute("UPDATE escalations SET fanned_out_at = issued_at")
    distinct, true = ("IS DISTINCT FROM", "true") if postgres else ("IS NOT", "1")
    op.execute(
        f"CREATE INDEX ix_assignments_sweep ON assignments ((supervised_for {distinct} due_date), due_date) "
        f"WHERE is_lead IS {true} AND state IN ({OWED})"
    )
    op.create_index(
        "ix_escalations_fan_out",
        "escalations",
        ["workspace_id", "id"],
        postgresql_where=sa.text("fanned_out_at IS NULL"),
        sqlite_where=sa.text("fanned_out_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_escalations_fan_out", table_name="escalations")
    op.execute("DROP INDEX ix_assignments_sweep")
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.create_index("ix_escalations_assignment_id", ["assignment_id"], unique=False)
        batch_op.drop_column("fanned_out_at")
    with op.batch_alter_table("assignments") as batch_op:
        batch_op.drop_column("supervised_for")
