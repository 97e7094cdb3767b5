"""indexes for the supervision dashboard and the annual assessment

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-27

The assessment's rules (app/assessment/rules.py) and the dashboard (app/supervision/queries.py)
read a year of one kind of step or rung out of millions (docs/benchmarks.md, issue 7):

- ``ix_timeline_entries_action_at`` (action, at): 退回重办 / 退办未同意 of a year, and the
  approved extensions the dashboard's 已延期 column probes, without scanning every step;
- ``ix_escalations_rung_issued`` (rung, issued_on): the 催办/督办/移交 of a year.

And ``bulletins.pdf_job_id``: a bulletin's PDF is rendered by a worker (job ``bulletin_pdf``),
and its page follows that job's progress.

The same indexes are declared beside the assessment's models (app/assessment/models.py) so that
models and migrations agree.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_timeline_entries_action_at", "timeline_entries", ["action", "at"])
    op.create_index("ix_escalations_rung_issued", "escalations", ["rung", "issued_on"])
    op.add_column("bulletins", sa.Column("pdf_job_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bulletins") as batch_op:
        batch_op.drop_column("pdf_job_id")
    op.drop_index("ix_escalations_rung_issued", table_name="escalations")
    op.drop_index("ix_timeline_entries_action_at", table_name="timeline_entries")
