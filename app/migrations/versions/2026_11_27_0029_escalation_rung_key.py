"""escalations: one unique (assignment, rung, due date, ordinal) and one foreign key to the assignment

The morning sweep writes ~16,000 rungs at 1,000,000 open assignments in one INSERT; each row paid
for four foreign-key checks and seven indexes (docs/benchmarks.md, "Deadline sweep"). This
migration keeps what the exactly-once guarantee and workspace isolation rest on and drops what
only repeated it:

- ``uq_escalations_assignment_rung_due_ordinal`` (unique): a rung of a deadline is issued once,
  whoever issues it (the sweep, 督查室's 督办单 or 移交函). It replaces the non-unique
  ``ix_escalations_assignment_rung_due`` (its first three columns: every query that read that
  index reads this one). The unique ``key`` (``12:urge:2026-12-04:2``, the same four values as
  text) stays, written by both releases: the previous release still reads it. Nothing in this
  release reads it; a later release stops writing it and drops it with its index (contract).
- ``fk_escalations_assignment_id_assignments`` becomes ONE composite key
  ``(assignment_id, case_id, workspace_id) → assignments (id, case_id, workspace_id)``
  (``uq_assignments_id_case_workspace`` is its parent key), ON DELETE CASCADE as before. It
  replaces the keys to ``cases`` and ``workspaces``, which repeated the assignment's own (an
  assignment's case or unit deleted deletes the assignment, and so its rungs), and it is
  stronger than they were: a rung's unit and case must be its assignment's, so the row-level
  security that reads ``workspace_id`` can never be handed a rung filed under another unit.
- ``ix_escalations_workspace_id`` goes: it served the key to ``workspaces`` (a unit deleted now
  takes its rungs along through its assignments); no query reads rungs by the unit alone (the
  fan-out reads its unit's pending ones through ``ix_escalations_fan_out``, the assessment by
  rung and day through ``ix_escalations_rung_issued``).
- ``supervision_live_flags`` (0026, the escalations' statement trigger) updates only the live
  rows whose flag the new rungs actually change (a second 催办 or a 督办 after a 催办 used to
  rewrite the row with the same values).

Every row the previous release writes satisfies all of it (it copies the case and the unit from
the assignment, and its keys are made of the four values), so the previous release runs on this
schema unchanged.

At 1,000,000 assignments and 3.9 million escalations the upgrade took 15 s (two unique indexes
built, the new key checked against every row); writes to both tables wait meanwhile.

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLAGS = """CREATE OR REPLACE FUNCTION supervision_live_flags() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_TABLE_NAME = 'escalations' THEN
            UPDATE supervision_live s
            SET reminder = s.reminder OR n.reminder, urge = s.urge OR n.urge,
                supervise = s.supervise OR n.supervise, transfer = s.transfer OR n.transfer
            FROM (SELECT assignment_id, bool_or(rung = 'reminder') AS reminder,
                         bool_or(rung = 'urge') AS urge, bool_or(rung = 'supervise') AS supervise,
                         bool_or(rung = 'transfer') AS transfer
                  FROM changed GROUP BY assignment_id) n
            WHERE s.assignment_id = n.assignment_id%s;
        ELSE
            UPDATE supervision_live SET extended = true
            WHERE NOT extended AND assignment_id IN (SELECT assignment_id FROM changed
                WHERE action = 'extension_approved' AND assignment_id IS NOT NULL);
        END IF;
        RETURN NULL;
    END $$"""
CHANGED_ONLY = """
              AND ((n.reminder AND NOT s.reminder) OR (n.urge AND NOT s.urge)
                   OR (n.supervise AND NOT s.supervise) OR (n.transfer AND NOT s.transfer))"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_index(
        "uq_assignments_id_case_workspace", "assignments", ["id", "case_id", "workspace_id"], unique=True
    )
    op.create_index(
        "uq_escalations_assignment_rung_due_ordinal",
        "escalations",
        ["assignment_id", "rung", "due_date", "ordinal"],
        unique=True,
    )
    op.drop_index("ix_escalations_assignment_rung_due", table_name="escalations")
    op.drop_index("ix_escalations_workspace_id", table_name="escalations")
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.drop_constraint("fk_escalations_assignment_id_assignments", type_="foreignkey")
        batch_op.drop_constraint("fk_escalations_case_id_cases", type_="foreignkey")
        batch_op.drop_constraint("fk_escalations_workspace_id_workspaces", type_="foreignkey")
        batch_op.create_foreign_key(
            "fk_escalations_assignment_id_assignments",
            "assignments",
            ["assignment_id", "case_id", "workspace_id"],
            ["id", "case_id", "workspace_id"],
            ondelete="CASCADE",
        )
    if postgres:
        op.execute(FLAGS % CHANGED_ONLY)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(FLAGS % "")
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.drop_constraint("fk_escalations_assignment_id_assignments", type_="foreignkey")
        batch_op.create_foreign_key(
            "fk_escalations_assignment_id_assignments",
            "assignments",
            ["assignment_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            "fk_escalations_case_id_cases", "cases", ["case_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_foreign_key(
            "fk_escalations_workspace_id_workspaces",
            "workspaces",
            ["workspace_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.create_index("ix_escalations_workspace_id", "escalations", ["workspace_id"], unique=False)
    op.create_index(
        "ix_escalations_assignment_rung_due",
        "escalations",
        ["assignment_id", "rung", "due_date"],
        unique=False,
    )
    op.drop_index("uq_escalations_assignment_rung_due_ordinal", table_name="escalations")
    op.drop_index("uq_assignments_id_case_workspace", table_name="assignments")
