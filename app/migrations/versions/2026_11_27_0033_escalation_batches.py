"""escalation batches: the sweep records each unit's decided rungs as one row; the fan-out writes them

At 1,000,000 open assignments the morning sweep decides ~16,000 rungs. Writing them as
``escalations`` rows inside the deciding transaction (their six indexes, the foreign key to the
assignment, the live set's trigger) took 0.28 s of the sweep's 0.49 s (docs/benchmarks.md).
The decision needs none of that in its own transaction: what makes a rung happen once is that it
is decided under the sweep's lock with its number from the locked counter. So the sweep now
records, per unit, one ``escalation_batches`` row with that unit's numbered rungs (JSON text), and
the unit's fan-out job writes them as ``escalations`` rows (the unique rung, the foreign key and
the trigger all still apply there) and deletes the batch, in one transaction.

Everyone who decides from the ``escalations`` rows writes the pending batches first, in their own
transaction (``app.escalation.services.expand``): the next sweep (under its lock), 督查室's
督办单 by hand (after taking the counter the sweep holds) and the fan-out. Nothing else reads the
rungs before their fan-out (their timeline entries and notices come from it).

The previous release never reads this table and still writes its rungs directly: it runs on this
schema unchanged. Should a sweep of the previous release run between a new sweep and its fan-out
(a rolling deploy), it would not see the pending batches and could decide a rung again: the
expansion skips a rung whose row is already there (``ON CONFLICT`` on the unique rung), so the
rung is still written and notified once. Row-level security as on every workspace-owned table.

Revision ID: 0033
Revises: 0032
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.migrations import rls

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "escalation_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rungs", sa.Text(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_escalation_batches_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_batches")),
    )
    op.create_index(
        op.f("ix_escalation_batches_workspace_id"), "escalation_batches", ["workspace_id"], unique=False
    )
    rls.enable("escalation_batches")


def downgrade() -> None:
    rls.disable("escalation_batches")
    op.drop_index(op.f("ix_escalation_batches_workspace_id"), table_name="escalation_batches")
    op.drop_table("escalation_batches")
