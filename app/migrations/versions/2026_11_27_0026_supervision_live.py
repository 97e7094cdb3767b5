"""supervision live: the supervision dashboard's live set, kept by the database (PostgreSQL)

The dashboard (app/supervision/queries.py, 第十九条/第二十条) counts the lead assignments still in
progress — owed, being returned — by unit, category, topic, region and board, with their rungs of
the 三单一函 and approved extensions. At 1,000,000 cases that set is ~20,000 rows scattered over
millions (docs/benchmarks.md): evaluating it live read 80,000 pages per view. ``supervision_live``
holds exactly that set, one narrow row per live lead assignment, with the case's dimensions and
the flags that do not depend on the day (rungs issued, extension approved); the day-dependent ones
(due soon, overdue) are computed from ``due_date`` when the page is read.

The rows are kept by triggers in the same transaction as the change, so the dashboard is never
stale: ``supervision_live_refresh(ids)`` recomputes the rows of the given assignments from the
source tables (delete, then insert those still live), called by

- ``assignments``: after insert, or an update of its state, due date, lead flag, unit or case;
- ``cases``: after an update of its state or a dimension (all of its lead assignments);
- ``escalations``: after insert (statement level: one UPDATE setting the rung flags per sweep, not
  a call per rung) or delete (the rows touched are recomputed);
- ``timeline_entries``: likewise for approved extensions.

The function reads the source tables across workspaces (``minpan.system`` on inside it, restored
before it returns): it is database code and writes only this derived table. The table holds ids,
dates and the case's category/topic/region/board — no message text, no personal data — and has no
row-level security, so a unit's transaction can keep its own rows current; only the supervision
office's queries read it. SQLite (the embedded default) evaluates the set live: small data.

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWED = ("pending", "handling", "awaiting_signoff", "return_drafted", "extension_requested",
        "extension_pending", "explanation_requested")  # fmt: skip
LIVE_ASSIGNMENT = ", ".join(f"'{s}'" for s in (*OWED, "return_requested", "returned"))

UPGRADE = [
    """CREATE TABLE supervision_live (
        assignment_id integer PRIMARY KEY REFERENCES assignments (id) ON DELETE CASCADE,
        unit_id integer NOT NULL,
        case_id integer NOT NULL,
        state text NOT NULL,
        case_state text NOT NULL,
        due_date date NOT NULL,
        category text NOT NULL,
        topic text NOT NULL,
        region text NOT NULL,
        board text NOT NULL,
        extended boolean NOT NULL,
        reminder boolean NOT NULL,
        urge boolean NOT NULL,
        supervise boolean NOT NULL,
        transfer boolean NOT NULL
    )""",
    f"""CREATE FUNCTION supervision_live_refresh(ids integer[]) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE
        was text := current_setting('minpan.system', true);
    BEGIN
        IF ids IS NULL OR cardinality(ids) = 0 THEN
            RETURN;
        END IF;
        PERFORM set_config('minpan.system', 'on', true);
        DELETE FROM supervision_live WHERE assignment_id = ANY (ids);
        INSERT INTO supervision_live
        SELECT a.id, a.workspace_id, a.case_id, a.state, c.state, a.due_date,
               c.category, c.topic, c.region, c.board,
               EXISTS (SELECT 1 FROM timeline_entries t WHERE t.case_id = a.case_id
                       AND t.assignment_id = a.id AND t.action = 'extension_approved'),
               EXISTS (SELECT 1 FROM escalations e WHERE e.assignment_id = a.id AND e.rung = 'reminder'),
               EXISTS (SELECT 1 FROM escalations e WHERE e.assignment_id = a.id AND e.rung = 'urge'),
               EXISTS (SELECT 1 FROM escalations e WHERE e.assignment_id = a.id AND e.rung = 'supervise'),
               EXISTS (SELECT 1 FROM escalations e WHERE e.assignment_id = a.id AND e.rung = 'transfer')
        FROM assignments a JOIN cases c ON c.id = a.case_id
        WHERE a.id = ANY (ids) AND a.is_lead
          AND c.state IN ('received', 'assigned')
          AND a.state IN ({LIVE_ASSIGNMENT});
        PERFORM set_config('minpan.system', coalesce(was, ''), true);
    END $$""",  # noqa: S608  (LIVE_ASSIGNMENT: this module's constants)
    """CREATE FUNCTION supervision_live_assignment() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM supervision_live_refresh(ARRAY[NEW.id]);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER assignments_supervision_live
        AFTER INSERT OR UPDATE OF state, due_date, is_lead, workspace_id, case_id ON assignments
        FOR EACH ROW EXECUTE FUNCTION supervision_live_assignment()""",
    """CREATE FUNCTION supervision_live_case() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        was text := current_setting('minpan.system', true);
        ids integer[];
    BEGIN
        PERFORM set_config('minpan.system', 'on', true);
        SELECT array_agg(id) INTO ids FROM assignments WHERE case_id = NEW.id AND is_lead;
        PERFORM set_config('minpan.system', coalesce(was, ''), true);
        PERFORM supervision_live_refresh(ids);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER cases_supervision_live
        AFTER UPDATE OF state, category, topic, region, board ON cases
        FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.category IS DISTINCT FROM NEW.category
            OR OLD.topic IS DISTINCT FROM NEW.topic OR OLD.region IS DISTINCT FROM NEW.region
            OR OLD.board IS DISTINCT FROM NEW.board)
        EXECUTE FUNCTION supervision_live_case()""",
    # Statement level, with the changed rows as a transition table: one statement per statement.
    # A new rung or an approved extension only sets a flag of a row that is already there (or
    # not live, then nothing); a deletion recomputes the rows it touched.
    """CREATE FUNCTION supervision_live_flags() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_TABLE_NAME = 'escalations' THEN
            UPDATE supervision_live s
            SET reminder = s.reminder OR n.reminder, urge = s.urge OR n.urge,
                supervise = s.supervise OR n.supervise, transfer = s.transfer OR n.transfer
            FROM (SELECT assignment_id, bool_or(rung = 'reminder') AS reminder,
                         bool_or(rung = 'urge') AS urge, bool_or(rung = 'supervise') AS supervise,
                         bool_or(rung = 'transfer') AS transfer
                  FROM changed GROUP BY assignment_id) n
            WHERE s.assignment_id = n.assignment_id;
        ELSE
            UPDATE supervision_live SET extended = true
            WHERE NOT extended AND assignment_id IN (SELECT assignment_id FROM changed
                WHERE action = 'extension_approved' AND assignment_id IS NOT NULL);
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION supervision_live_rows() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_TABLE_NAME = 'timeline_entries' THEN
            PERFORM supervision_live_refresh(ARRAY(SELECT DISTINCT assignment_id FROM changed
                WHERE action = 'extension_approved' AND assignment_id IS NOT NULL));
        ELSE
            PERFORM supervision_live_refresh(ARRAY(SELECT DISTINCT assignment_id FROM changed));
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER escalations_supervision_live_ins AFTER INSERT ON escalations
        REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION supervision_live_flags()""",
    """CREATE TRIGGER escalations_supervision_live_del AFTER DELETE ON escalations
        REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION supervision_live_rows()""",
    """CREATE TRIGGER timeline_supervision_live_ins AFTER INSERT ON timeline_entries
        REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION supervision_live_flags()""",
    """CREATE TRIGGER timeline_supervision_live_del AFTER DELETE ON timeline_entries
        REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION supervision_live_rows()""",
    # The rows of today's data.
    "SELECT set_config('minpan.system', 'on', true)",
    f"""SELECT supervision_live_refresh(ARRAY(
        SELECT a.id FROM assignments a JOIN cases c ON c.id = a.case_id
        WHERE a.is_lead AND c.state IN ('received', 'assigned') AND a.state IN ({LIVE_ASSIGNMENT})))""",  # noqa: S608
]

DOWNGRADE = [
    "DROP TRIGGER IF EXISTS timeline_supervision_live_del ON timeline_entries",
    "DROP TRIGGER IF EXISTS timeline_supervision_live_ins ON timeline_entries",
    "DROP TRIGGER IF EXISTS escalations_supervision_live_del ON escalations",
    "DROP TRIGGER IF EXISTS escalations_supervision_live_ins ON escalations",
    "DROP TRIGGER IF EXISTS cases_supervision_live ON cases",
    "DROP TRIGGER IF EXISTS assignments_supervision_live ON assignments",
    "DROP FUNCTION IF EXISTS supervision_live_rows()",
    "DROP FUNCTION IF EXISTS supervision_live_flags()",
    "DROP FUNCTION IF EXISTS supervision_live_case()",
    "DROP FUNCTION IF EXISTS supervision_live_assignment()",
    "DROP FUNCTION IF EXISTS supervision_live_refresh(integer[])",
    "DROP TABLE IF EXISTS supervision_live",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in DOWNGRADE:
        op.execute(statement)
