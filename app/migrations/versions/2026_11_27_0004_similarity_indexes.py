"""similarity indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

The centre's triage page looks for similar earlier messages (第五条: 重复事项) among the most recent
cases of the same region, of the same topic, and of any kind (app/cases/similarity.py). Each of
those is one range scan, newest first, on one of these indexes; without them a large table would
be read and sorted in full on every page view. The last one also serves the centre's queue.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_cases_workspace_region_registered": ["workspace_id", "region", "registered_at"],
    "ix_cases_workspace_topic_registered": ["workspace_id", "topic", "registered_at"],
    "ix_cases_workspace_registered": ["workspace_id", "registered_at"],
}


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for name in reversed(INDEXES):
            batch_op.drop_index(name)
