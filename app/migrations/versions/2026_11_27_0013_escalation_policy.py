"""escalation thresholds set by the centre, repeated 催办, 移交函 decisions

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "escalation_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reminder_days_before", sa.Integer(), nullable=False),
        sa.Column("urge_after_days", sa.Integer(), nullable=False),
        sa.Column("urge_repeat_days", sa.Integer(), nullable=False),
        sa.Column("supervise_after_days", sa.Integer(), nullable=False),
        sa.Column("supervise_after_urges", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("last_sweep_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_escalation_policy_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_policy")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("publication_flagged_for", sa.Date(), nullable=True))
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ordinal", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("decided_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("addressee", sa.String(length=120), nullable=False, server_default=""))
        batch_op.create_foreign_key(
            batch_op.f("fk_escalations_decided_by_id_users"),
            "users",
            ["decided_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            "ix_escalations_assignment_rung_due", ["assignment_id", "rung", "due_date"], unique=False
        )
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.alter_column("ordinal", server_default=None)
        batch_op.alter_column("reason", server_default=None)
        batch_op.alter_column("addressee", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_index("ix_escalations_assignment_rung_due")
        batch_op.drop_constraint(batch_op.f("fk_escalations_decided_by_id_users"), type_="foreignkey")
        batch_op.drop_column("addressee")
        batch_op.drop_column("reason")
        batch_op.drop_column("decided_by_id")
        batch_op.drop_column("ordinal")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("publication_flagged_for")
    op.drop_table("escalation_policy")
