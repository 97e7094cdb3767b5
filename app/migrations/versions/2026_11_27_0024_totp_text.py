"""totp text: room for a sealed second-factor secret (expand step)

``users.totp_secret`` becomes TEXT on PostgreSQL (a sealed value is longer than VARCHAR(64); SQLite
does not enforce lengths). Nothing else changes, so the previous release keeps working. From this
release on, a secret is written sealed (``app/security/crypto.py``, purpose ``totp_secret``) and a
secret still in plaintext is read as such; the next migration seals the rest (contract step).

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.alter_column("users", "totp_secret", type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.alter_column(
            "users", "totp_secret", type_=sa.String(64), existing_type=sa.Text(), existing_nullable=False
        )
