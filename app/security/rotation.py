"""Key rotation for sealed columns: ``minpan keys rotate`` and ``minpan keys status``.

Rotation re-seals, with the active key, every value sealed under another key (or, defensively,
left in plaintext), table by table in id order, ``batch`` rows per transaction. Each UPDATE is a
compare-and-swap on the value it read (``WHERE id = ? AND col = <old value>``), so a person editing
the same row meanwhile is never overwritten: that row was written with the active key already and
is skipped (the batch also locks its rows: ``FOR UPDATE`` on PostgreSQL, the write lock on
SQLite, so a concurrent writer waits for the batch). The statements are Core on plain-text
columns: the rows' optimistic-lock ``version`` is not touched, so nobody's open form goes stale
because of a rotation.

Procedure (README, "Keys for personal data"): put the new key first in ``MINPAN_DATA_KEYS`` with the old
ones after it, restart every process, run ``minpan keys rotate``, check ``minpan keys status``
shows nothing under the old key, then remove it from the settings and restart again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.security.crypto import ENCRYPTED_COLUMNS, Keyring, key_id_of

PLAINTEXT = "(plaintext)"


@dataclass
class RotationReport:
    rewritten: int = 0  # values re-sealed
    rows: int = 0  # rows touched
    batches: int = 0
    skipped: int = 0  # changed by someone else meanwhile (already under the active key)
    per_table: Counter[str] = field(default_factory=Counter)


def _table(name: str) -> sa.TableClause:
    return sa.table(
        name, sa.column("id", sa.Integer), *(sa.column(c, sa.Text) for c in ENCRYPTED_COLUMNS[name])
    )


def _stale_filter(table: sa.TableClause, columns: tuple[str, ...], ring: Keyring) -> sa.ColumnElement[bool]:
    current = f"enc1:{ring.active}:%"
    return sa.or_(*((table.c[c] != "") & ~table.c[c].like(current) for c in columns))


def status(db: Session) -> dict[str, Counter[str]]:
    """How many values each key id seals, per table.column (``(plaintext)`` for unsealed ones)."""
    found: dict[str, Counter[str]] = {}
    for name, columns in ENCRYPTED_COLUMNS.items():
        table = _table(name)
        for column in columns:
            counts: Counter[str] = Counter()
            for (value,) in db.execute(sa.select(table.c[column]).where(table.c[column] != "")):
                counts[key_id_of(value) or PLAINTEXT] += 1
            found[f"{name}.{column}"] = counts
    return found


def rotate(
    session_factory: Callable[[], AbstractContextManager[Session]], ring: Keyring, batch: int = 500
) -> RotationReport:
    """Re-seal everything not under ``ring.active``; one transaction per batch.

    ``session_factory`` makes trusted (system) sessions: ``app.db.system_session`` in the CLI.
    """
    report = RotationReport()
    for name, columns in ENCRYPTED_COLUMNS.items():
        table = _table(name)
        last = 0
        while True:
            with session_factory() as db:
                query = (
                    sa.select(table.c.id, *(table.c[c] for c in columns))
                    .where(table.c.id > last, _stale_filter(table, columns, ring))
                    .order_by(table.c.id)
                    .limit(batch)
                )
                if db.get_bind().dialect.name == "sqlite":
                    # Take the write lock first: a writer meanwhile waits for this short batch
                    # instead of leaving our read snapshot stale ("database is locked").
                    db.execute(sa.update(table).where(table.c.id == -1).values(id=table.c.id))
                else:
                    query = query.with_for_update()  # the batch's rows, until its commit
                rows = db.execute(query).all()
                if not rows:
                    break
                for row in rows:
                    old = {c: getattr(row, c) for c in columns if ring.needs_rotation(getattr(row, c))}
                    new = {
                        c: ring.encrypt(ring.decrypt(v, c) if key_id_of(v) else v, c) for c, v in old.items()
                    }
                    result = db.execute(
                        sa.update(table)
                        .where(table.c.id == row.id, *(table.c[c] == v for c, v in old.items()))
                        .values(**new)
                    )
                    if result.rowcount == 1:  # type: ignore[attr-defined]
                        report.rows += 1
                        report.rewritten += len(new)
                        report.per_table[name] += len(new)
                    else:
                        report.skipped += 1
                db.commit()
                report.batches += 1
                last = rows[-1].id
    return report
