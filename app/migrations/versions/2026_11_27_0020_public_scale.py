"""public search and list indexes for 1,000,000 published replies; static reply pages

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-27

* ``public_entries``: ``(published_at, case_id)`` so that a search walks newest first and stops
  when its page is full; ``(kind, topic)`` and ``(kind, region)`` for the filters' choices (a loose
  index scan, one probe a value).
* PostgreSQL: the narrow search table ``public_terms`` (case id, kind, date, the filter columns and
  the stored ``tsvector`` of ``terms``, kept inline: no TOAST), kept in step by a trigger on
  ``public_entries`` and deleted with it; its GIN index replaces the expression index
  ``ix_public_entries_terms_fts`` of migration 0015, and its ``(published_at, case_id)`` index
  serves the newest-first walk of common words. Rows are checked without parsing ``terms`` again
  and without reading the wide rows. SQLite keeps its FTS5 table.
* ``public_pages`` (页面静态化): the bytes of each published reply page as rendered for the
  default display, with its ETag. Triggers on ``cases``, ``workspaces`` and ``documents`` clear a
  page (and bump its ``generation``) in the transaction that changes what it shows; a page is
  filled only by a writer that read the same generation before rendering (app/public/pages.py).
  One empty row per public reply is made here; the pages are rendered on publication or on first
  visit.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_PG_INDEX = "CREATE INDEX ix_public_entries_terms_fts ON public_entries USING gin (to_tsvector('simple'::regconfig, terms))"

POSTGRES_TERMS = [
    "CREATE TABLE public_terms ("
    " case_id integer PRIMARY KEY REFERENCES public_entries (case_id) ON DELETE CASCADE,"
    " kind varchar(10) NOT NULL,"
    " published_at timestamp with time zone NOT NULL,"
    " unit_id integer,"
    " category varchar(20) NOT NULL,"
    " tsv tsvector NOT NULL"
    ") WITH (toast_tuple_target = 8160, fillfactor = 100)",
    "ALTER TABLE public_terms ALTER COLUMN tsv SET STORAGE MAIN",
    "CREATE FUNCTION public_terms_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO public_terms (case_id, kind, published_at, unit_id, category, tsv) "
    "VALUES (NEW.case_id, NEW.kind, NEW.published_at, NEW.unit_id, NEW.category, "
    "to_tsvector('simple'::regconfig, NEW.terms)) "
    "ON CONFLICT (case_id) DO UPDATE SET kind = EXCLUDED.kind, published_at = EXCLUDED.published_at, "
    "unit_id = EXCLUDED.unit_id, category = EXCLUDED.category, tsv = EXCLUDED.tsv; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER public_entries_terms AFTER INSERT OR UPDATE ON public_entries "
    "FOR EACH ROW EXECUTE FUNCTION public_terms_sync()",
    "INSERT INTO public_terms (case_id, kind, published_at, unit_id, category, tsv) "
    "SELECT case_id, kind, published_at, unit_id, category, to_tsvector('simple'::regconfig, terms) "
    "FROM public_entries ORDER BY published_at",
    "CREATE INDEX ix_public_terms_tsv ON public_terms USING gin (tsv)",
    "CREATE INDEX ix_public_terms_published ON public_terms (published_at, case_id)",
    "DROP INDEX IF EXISTS ix_public_entries_terms_fts",
]

# A change to what a stored page shows clears it and bumps its generation, in the same transaction.
POSTGRES_PAGES = [
    "CREATE FUNCTION public_pages_case_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO public_pages (case_id, unit_id, generation, etag, render_version) "
    "VALUES (NEW.id, NEW.reply_unit_id, 1, '', '') "
    "ON CONFLICT (case_id) DO UPDATE SET generation = public_pages.generation + 1, "
    "unit_id = EXCLUDED.unit_id, body = NULL, etag = ''; RETURN NULL; END $$",
    "CREATE TRIGGER cases_public_page AFTER UPDATE ON cases FOR EACH ROW "
    "WHEN (NEW.published_at IS NOT NULL OR OLD.published_at IS NOT NULL) "
    "EXECUTE FUNCTION public_pages_case_changed()",
    "CREATE FUNCTION public_pages_unit_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE public_pages SET generation = generation + 1, body = NULL, etag = '' WHERE unit_id = NEW.id; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER workspaces_public_page AFTER UPDATE ON workspaces FOR EACH ROW "
    "WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.contact_phone IS DISTINCT FROM NEW.contact_phone "
    "OR OLD.short_name IS DISTINCT FROM NEW.short_name) "
    "EXECUTE FUNCTION public_pages_unit_changed()",
    "CREATE FUNCTION public_pages_document_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE public_pages SET generation = generation + 1, body = NULL, etag = '' "
    "WHERE case_id = (CASE WHEN TG_OP = 'DELETE' THEN OLD.case_id ELSE NEW.case_id END); "
    "RETURN NULL; END $$",
    "CREATE TRIGGER documents_public_page AFTER INSERT OR UPDATE OR DELETE ON documents "
    "FOR EACH ROW EXECUTE FUNCTION public_pages_document_changed()",
]
POSTGRES_PAGES_DROP = [
    "DROP TRIGGER IF EXISTS documents_public_page ON documents",
    "DROP TRIGGER IF EXISTS workspaces_public_page ON workspaces",
    "DROP TRIGGER IF EXISTS cases_public_page ON cases",
    "DROP FUNCTION IF EXISTS public_pages_document_changed()",
    "DROP FUNCTION IF EXISTS public_pages_unit_changed()",
    "DROP FUNCTION IF EXISTS public_pages_case_changed()",
]

SQLITE_PAGES = [
    "CREATE TRIGGER cases_public_page AFTER UPDATE ON cases "
    "WHEN NEW.published_at IS NOT NULL OR OLD.published_at IS NOT NULL BEGIN "
    "INSERT INTO public_pages (case_id, unit_id, generation, etag, render_version) "
    "VALUES (NEW.id, NEW.reply_unit_id, 1, '', '') "
    "ON CONFLICT (case_id) DO UPDATE SET generation = generation + 1, unit_id = excluded.unit_id, "
    "body = NULL, etag = ''; END",
    "CREATE TRIGGER workspaces_public_page AFTER UPDATE ON workspaces "
    "WHEN OLD.name IS NOT NEW.name OR OLD.contact_phone IS NOT NEW.contact_phone "
    "OR OLD.short_name IS NOT NEW.short_name BEGIN "
    "UPDATE public_pages SET generation = generation + 1, body = NULL, etag = '' WHERE unit_id = NEW.id; END",
    "CREATE TRIGGER documents_public_page_ai AFTER INSERT ON documents BEGIN "
    "UPDATE public_pages SET generation = generation + 1, body = NULL, etag = '' "
    "WHERE case_id = NEW.case_id; END",
    "CREATE TRIGGER documents_public_page_au AFTER UPDATE ON documents BEGIN "
    "UPDATE public_pages SET generation = generation + 1, body = NULL, etag = '' "
    "WHERE case_id IN (OLD.case_id, NEW.case_id); END",
    "CREATE TRIGGER documents_public_page_ad AFTER DELETE ON documents BEGIN "
    "UPDATE public_pages SET generation = generation + 1, body = NULL, etag = '' "
    "WHERE case_id = OLD.case_id; END",
]
SQLITE_PAGES_DROP = [
    "DROP TRIGGER IF EXISTS documents_public_page_ad",
    "DROP TRIGGER IF EXISTS documents_public_page_au",
    "DROP TRIGGER IF EXISTS documents_public_page_ai",
    "DROP TRIGGER IF EXISTS workspaces_public_page",
    "DROP TRIGGER IF EXISTS cases_public_page",
]

# One empty row per public reply: a page is rendered into it on its first visit.
SEED_PAGES = (
    "INSERT INTO public_pages (case_id, unit_id, generation, etag, render_version) "
    "SELECT id, reply_unit_id, 0, '', '' FROM cases "
    "WHERE state IN ('published', 'archived') AND published_at IS NOT NULL AND decline_reason = ''"
)


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("public_entries", schema=None) as batch_op:
        batch_op.create_index("ix_public_entries_published", ["published_at", "case_id"], unique=False)
        batch_op.create_index("ix_public_entries_kind_topic", ["kind", "topic"], unique=False)
        batch_op.create_index("ix_public_entries_kind_region", ["kind", "region"], unique=False)
    op.create_table(
        "public_pages",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("render_version", sa.String(length=16), nullable=False),
        sa.Column("etag", sa.String(length=80), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("rendered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_public_pages_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_public_pages")),
    )
    with op.batch_alter_table("public_pages", schema=None) as batch_op:
        batch_op.create_index("ix_public_pages_unit_id", ["unit_id"], unique=False)
    if bind.dialect.name == "postgresql":
        for statement in POSTGRES_TERMS + POSTGRES_PAGES:
            op.execute(statement)
        op.execute("SELECT set_config('minpan.system', 'on', true)")  # cases: row-level security
    else:
        for statement in SQLITE_PAGES:
            op.execute(statement)
    op.execute(SEED_PAGES)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in POSTGRES_PAGES_DROP:
            op.execute(statement)
        op.execute("DROP TRIGGER IF EXISTS public_entries_terms ON public_entries")
        op.execute("DROP FUNCTION IF EXISTS public_terms_sync()")
        op.execute("DROP TABLE IF EXISTS public_terms")
        op.execute(OLD_PG_INDEX)
    else:
        for statement in SQLITE_PAGES_DROP:
            op.execute(statement)
    with op.batch_alter_table("public_pages", schema=None) as batch_op:
        batch_op.drop_index("ix_public_pages_unit_id")
    op.drop_table("public_pages")
    with op.batch_alter_table("public_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_public_entries_kind_region")
        batch_op.drop_index("ix_public_entries_kind_topic")
        batch_op.drop_index("ix_public_entries_published")
