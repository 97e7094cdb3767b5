"""public index and Chinese full-text search

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27

``public_entries``: one row per published reply or declined message, masked text only
(app/public/models.py). The full-text index over its ``terms`` (character pairs, see
app/public/search.py):

* SQLite: the FTS5 table ``public_search`` with ``public_entries`` as its external content, kept in
  step by three triggers;
* PostgreSQL: a GIN index on ``to_tsvector('simple', terms)`` (no extension needed).

Cases already published or declined are indexed here, with the masking rules of the code that runs
the migration (``minpan demo`` and the tests rebuild the index the same way: ``reindex_all``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE public_search USING fts5(terms, content='public_entries', content_rowid='case_id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER public_entries_ai AFTER INSERT ON public_entries BEGIN "
    "INSERT INTO public_search(rowid, terms) VALUES (new.case_id, new.terms); END",
    "CREATE TRIGGER public_entries_ad AFTER DELETE ON public_entries BEGIN "
    "INSERT INTO public_search(public_search, rowid, terms) VALUES ('delete', old.case_id, old.terms); END",
    "CREATE TRIGGER public_entries_au AFTER UPDATE ON public_entries BEGIN "
    "INSERT INTO public_search(public_search, rowid, terms) VALUES ('delete', old.case_id, old.terms); "
    "INSERT INTO public_search(rowid, terms) VALUES (new.case_id, new.terms); END",
]
POSTGRES_FTS = [
    "CREATE INDEX ix_public_entries_terms_fts ON public_entries USING gin (to_tsvector('simple'::regconfig, terms))",
]


def upgrade() -> None:
    op.create_table(
        "public_entries",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("topic", sa.String(length=60), nullable=False),
        sa.Column("region", sa.String(length=60), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_public_entries_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["workspaces.id"],
            name=op.f("fk_public_entries_unit_id_workspaces"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_public_entries")),
    )
    with op.batch_alter_table("public_entries", schema=None) as batch_op:
        batch_op.create_index("ix_public_entries_kind_published", ["kind", "published_at"], unique=False)
        batch_op.create_index(
            "ix_public_entries_kind_unit_published", ["kind", "unit_id", "published_at"], unique=False
        )
        batch_op.create_index(
            "ix_public_entries_kind_category_published", ["kind", "category", "published_at"], unique=False
        )
    bind = op.get_bind()
    for statement in SQLITE_FTS if bind.dialect.name == "sqlite" else POSTGRES_FTS:
        op.execute(statement)
    _index_existing(bind)


def _index_existing(bind: sa.Connection) -> None:
    from sqlalchemy.orm import Session

    from app.public.search import reindex_all
    from app.tenants.scope import TenantContext, bind_tenant

    session = Session(bind=bind, join_transaction_mode="create_savepoint")
    bind_tenant(session, TenantContext.system_context())
    try:
        reindex_all(session)
        session.commit()
    finally:
        session.close()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("public_entries_au", "public_entries_ad", "public_entries_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS public_search")
    else:
        op.execute("DROP INDEX IF EXISTS ix_public_entries_terms_fts")
    with op.batch_alter_table("public_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_public_entries_kind_category_published")
        batch_op.drop_index("ix_public_entries_kind_unit_published")
        batch_op.drop_index("ix_public_entries_kind_published")
    op.drop_table("public_entries")
