"""sealed files: the documents' PDFs and the attachments still in plaintext are sealed (contract step)

Since the previous release every new ``documents.pdf`` and ``attachments.data`` is written sealed
(AES-256-GCM, ``app/security/crypto.py``, purposes ``documents.pdf`` and ``attachments.data``) and
that release reads both forms; this seals the rest with the active key of ``MINPAN_DATA_KEYS``, so
a copy of the database no longer yields the 承办单 and 归档材料 (the citizen's name and phone in
full) or the citizens' scans, and from this release on a file in plaintext is an error like any
unsealed value. The previous release reads sealed files, so this runs while it is still serving.
``sha256`` and ``size`` stay those of the plain file.

In id order, a batch of rows at a time: only the head of each file is read to see whether it is
sealed (its key id), then the files to change are loaded and rewritten one by one, so memory stays
at one file whatever the table holds. Files already sealed are left alone (the upgrade can be
re-run); the downgrade opens them again (it needs every key still in use).

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-27
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILES = {"documents": "pdf", "attachments": "data"}  # the purpose of each is "table.column"
BATCH = 200
HEAD = len("enc1:") + 33  # enough for the key id of a sealed file


def _convert(change: Callable[[bytes, str], bytes], needs: Callable[[bytes], bool]) -> None:
    """Rewrite every file whose head ``needs`` changing, in id order."""
    conn = op.get_bind()
    for name, column in FILES.items():
        table = sa.table(name, sa.column("id", sa.Integer), sa.column(column, sa.LargeBinary))
        value, purpose = table.c[column], f"{name}.{column}"
        last = 0
        while True:
            heads = conn.execute(
                sa.select(table.c.id, sa.func.substr(value, 1, HEAD, type_=sa.LargeBinary))
                .where(table.c.id > last)
                .order_by(table.c.id)
                .limit(BATCH)
            ).all()
            if not heads:
                break
            for row_id, head in heads:
                if head and needs(head):
                    stored = conn.execute(sa.select(value).where(table.c.id == row_id)).scalar_one()
                    new = change(stored, purpose)
                    conn.execute(sa.update(table).where(table.c.id == row_id).values({column: new}))
            last = heads[-1][0]


def upgrade() -> None:
    from app.security.crypto import key_id_of, keyring

    ring = keyring()
    _convert(ring.encrypt_bytes, lambda head: key_id_of(head) is None)


def downgrade() -> None:
    from app.security.crypto import key_id_of, keyring

    ring = keyring()
    _convert(ring.decrypt_bytes, lambda head: key_id_of(head) is not None)
