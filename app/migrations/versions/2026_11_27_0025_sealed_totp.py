"""sealed totp: the second factor's secrets still in plaintext are sealed (contract step)

Since 0024's release every new ``users.totp_secret`` is written sealed (AES-256-GCM,
``app/security/crypto.py``, purpose ``totp_secret``) and that release reads both forms; this seals
the rest with the active key of ``MINPAN_DATA_KEYS``, so a copy of the database alone no longer
lets anyone compute a leader's sign-in codes, and from this release on a plaintext secret is an
error like any unsealed value. The previous release reads sealed secrets, so this runs while it
is still serving. Values already sealed are left alone (the upgrade can be re-run); the
downgrade opens them again (it needs every key still in use).

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-27
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMN = "totp_secret"


def _convert(change: Callable[[str], str], needs: Callable[[str], bool]) -> None:
    conn = op.get_bind()
    users = sa.table("users", sa.column("id", sa.Integer), sa.column(COLUMN, sa.Text))
    rows = conn.execute(sa.select(users.c.id, users.c[COLUMN]).where(users.c[COLUMN] != "")).all()
    for row in rows:  # a few thousand staff at most
        value = row[1] or ""
        if needs(value):
            conn.execute(sa.update(users).where(users.c.id == row[0]).values({COLUMN: change(value)}))


def upgrade() -> None:
    from app.security.crypto import key_id_of, keyring

    ring = keyring()
    _convert(lambda v: ring.encrypt(v, COLUMN), lambda v: key_id_of(v) is None)


def downgrade() -> None:
    from app.security.crypto import key_id_of, keyring

    ring = keyring()
    _convert(lambda v: ring.decrypt(v, COLUMN), lambda v: key_id_of(v) is not None)
