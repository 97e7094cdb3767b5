"""inbox and queue indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

A unit's inbox reads its open assignments by due date, then its finished ones, newest first;
the centre's queue reads its cases of one state, newest first. Each is one index range scan
instead of sorting all of a workspace's rows (bench/bench_pages.py, docs/benchmarks.md).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    ("assignments", "ix_assignments_workspace_state_due"): ["workspace_id", "state", "due_date"],
    ("assignments", "ix_assignments_workspace_due"): ["workspace_id", "due_date", "id"],
    ("cases", "ix_cases_workspace_state_registered"): ["workspace_id", "state", "registered_at"],
}


def upgrade() -> None:
    for (table, name), columns in INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    for table, name in reversed(list(INDEXES)):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
