"""satisfaction follow-up (满意率回访): ratings and the personal links that ask for them

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-27

Both tables belong to the centre's workspace, as the case does, with forced row-level security on
PostgreSQL. One rating and one link per case (unique ``case_id``); a link is stored as the SHA-256
of its token only.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.migrations import rls

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.String(length=12), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_ratings_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["users.id"],
            name=op.f("fk_ratings_recorded_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_ratings_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ratings")),
        sa.UniqueConstraint("case_id", name=op.f("uq_ratings_case_id")),
    )
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ratings_workspace_id"), ["workspace_id"], unique=False)
    op.create_table(
        "rating_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_rating_invites_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_rating_invites_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_rating_invites_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rating_invites")),
        sa.UniqueConstraint("case_id", name=op.f("uq_rating_invites_case_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_rating_invites_token_hash")),
    )
    with op.batch_alter_table("rating_invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rating_invites_workspace_id"), ["workspace_id"], unique=False)
    rls.enable("ratings", "rating_invites")


def downgrade() -> None:
    rls.disable("rating_invites", "ratings")
    with op.batch_alter_table("rating_invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rating_invites_workspace_id"))
    op.drop_table("rating_invites")
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ratings_workspace_id"))
    op.drop_table("ratings")
