"""special cases answered with an explanation (第十八条)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("explanation_reason", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("explanation_consented", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reply_is_explanation", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("reply_is_explanation")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("explanation_consented")
        batch_op.drop_column("explanation_reason")
