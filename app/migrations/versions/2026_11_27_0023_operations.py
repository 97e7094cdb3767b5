"""operations: encryption of citizens' contact data and other hardening

Seals the citizen's name, phone and e-mail on ``cases`` and ``assignments`` with the active key of
``MINPAN_DATA_KEYS`` (AES-256-GCM, ``app/security/crypto.py``). On PostgreSQL the columns become
TEXT first (a sealed value is longer than VARCHAR(40)); SQLite does not enforce lengths. Values
already sealed are left alone, so the upgrade can be re-run after an interruption. The downgrade
opens every value again (it needs every key still in use) and restores the VARCHAR lengths.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-27
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("cases", "assignments")
COLUMNS = {"citizen_name": 60, "citizen_phone": 40, "citizen_email": 200}
BATCH = 1000


def _convert(change: Callable[[str, str], str], needs: Callable[[str], bool]) -> None:
    """Rewrite every value that ``needs`` changing, in id order, a batch at a time."""
    conn = op.get_bind()
    for name in TABLES:
        table = sa.table(name, sa.column("id", sa.Integer), *(sa.column(c, sa.Text) for c in COLUMNS))
        last = 0
        while True:
            rows = conn.execute(
                sa.select(table.c.id, *(table.c[c] for c in COLUMNS))
                .where(table.c.id > last)
                .order_by(table.c.id)
                .limit(BATCH)
            ).all()
            if not rows:
                break
            for row in rows:
                values = {c: getattr(row, c) or "" for c in COLUMNS}
                new = {c: change(v, c) for c, v in values.items() if needs(v)}
                if new:
                    conn.execute(sa.update(table).where(table.c.id == row.id).values(**new))
            last = rows[-1].id


def upgrade() -> None:
    from app.security.crypto import key_id_of, keyring

    ring = keyring()
    if op.get_context().dialect.name == "postgresql":
        for name in TABLES:
            for column in COLUMNS:
                op.alter_column(name, column, type_=sa.Text(), existing_nullable=False)
    _convert(lambda v, c: ring.encrypt(v, c), lambda v: v != "" and key_id_of(v) is None)


def downgrade() -> None:
    from app.security.crypto import key_id_of, keyring

    ring = keyring()
    _convert(lambda v, c: ring.decrypt(v, c), lambda v: key_id_of(v) is not None)
    if op.get_context().dialect.name == "postgresql":
        for name in TABLES:
            for column, length in COLUMNS.items():
                op.alter_column(
                    name, column, type_=sa.String(length), existing_type=sa.Text(), existing_nullable=False
                )
