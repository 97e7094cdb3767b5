"""public pages: a NOTIFY when a stored page is cleared (PostgreSQL)

The web processes keep the stored reply pages they served in memory (app/public/memory.py) and
must drop one as soon as its ``public_pages`` row is cleared. Every way a stored page stops being
current goes through that row (migration 0020's triggers bump its ``generation``, a case deleted
takes its row along, a restore truncates the table), so the triggers are on the row itself:

* an UPDATE that bumps ``generation`` or clears ``body`` → ``NOTIFY minpan_public_pages, 'c<case id>'``;
* a DELETE → the same; a TRUNCATE → ``'*'`` (drop everything).

Filling a page (same generation, a body) notifies nothing. Notifications are sent at COMMIT, in
commit order, so a listener never learns of a change before it is visible. SQLite (one process,
nothing kept in memory) needs none of this.

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = [
    "CREATE FUNCTION public_pages_notify() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "PERFORM pg_notify('minpan_public_pages', "
    "CASE WHEN TG_OP = 'TRUNCATE' THEN '*' ELSE 'c' || OLD.case_id::text END); "
    "RETURN NULL; END $$",
    "CREATE TRIGGER public_pages_cleared AFTER UPDATE ON public_pages FOR EACH ROW "
    "WHEN (OLD.generation IS DISTINCT FROM NEW.generation OR (OLD.body IS NOT NULL AND NEW.body IS NULL)) "
    "EXECUTE FUNCTION public_pages_notify()",
    "CREATE TRIGGER public_pages_deleted AFTER DELETE ON public_pages FOR EACH ROW "
    "EXECUTE FUNCTION public_pages_notify()",
    "CREATE TRIGGER public_pages_truncated AFTER TRUNCATE ON public_pages FOR EACH STATEMENT "
    "EXECUTE FUNCTION public_pages_notify()",
]
DOWNGRADE = [
    "DROP TRIGGER IF EXISTS public_pages_truncated ON public_pages",
    "DROP TRIGGER IF EXISTS public_pages_deleted ON public_pages",
    "DROP TRIGGER IF EXISTS public_pages_cleared ON public_pages",
    "DROP FUNCTION IF EXISTS public_pages_notify()",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
