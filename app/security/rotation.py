"""Key rotation for sealed columns: ``minpan keys rotate`` and ``minpan keys status``.

Rotation re-seals, with the active key, every value sealed under another key (or, defensively,
left in plaintext), table by table in id order, ``batch`` rows per transaction, or ``blob_batch``
for the sealed files (``ENCRYPTED_BLOBS``: PDFs of 50–200 KB, attachments up to 8 MB), which are
loaded only for the rows of their batch; ``status`` reads only the head of each value (its key id),
never a whole file. Each UPDATE is a compare-and-swap on the value it read (``WHERE id = ? AND
col = <old value>``), so a person editing the same row meanwhile is never overwritten: that row was
written with the active key already and is skipped (the batch also locks its rows: ``FOR UPDATE``
on PostgreSQL, the write lock on SQLite, so a concurrent writer waits for the batch). The
statements are Core on the stored (sealed) columns: the rows' optimistic-lock ``version`` is not
touched, so nobody's open form goes stale because of a rotation.

Procedure (README, "Keys for personal data"): put the new key first in ``MINPAN_DATA_KEYS`` with the old
ones after it, restart every process, run ``minpan keys rotate``, check ``minpan keys status``
shows nothing under the old key, then remove it from the settings and restart again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.security.crypto import ENCRYPTED_BLOBS, ENCRYPTED_COLUMNS, PREFIX, Keyring, blob_purpose, key_id_of

PLAINTEXT = "(plaintext)"
_HEAD = len(PREFIX) + 33  # "enc1:" + a key id of at most 32 characters + ":"


@dataclass
class RotationReport:
    rewritten: int = 0  # values re-sealed
    rows: int = 0  # rows touched
    batches: int = 0
    skipped: int = 0  # changed by someone else meanwhile (already under the active key)
    per_table: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _SealedColumns:
    """The sealed columns of one table: text (``ENCRYPTED_COLUMNS``) or files (``ENCRYPTED_BLOBS``)."""

    name: str
    columns: tuple[str, ...]
    files: bool

    @cached_property
    def table(self) -> sa.TableClause:  # one object: every clause below names the same FROM
        kind = sa.LargeBinary if self.files else sa.Text
        return sa.table(self.name, sa.column("id", sa.Integer), *(sa.column(c, kind) for c in self.columns))

    def head(self, column: str) -> sa.ColumnElement[str | bytes]:
        """The first bytes (characters) of a value: enough for its key id, never a whole file."""
        return sa.func.substr(self.table.c[column], 1, _HEAD, type_=self.table.c[column].type)

    def stale(self, ring: Keyring) -> sa.ColumnElement[bool]:
        """A value in one of the columns is neither empty nor sealed under the active key."""
        current = f"{PREFIX}{ring.active}:"
        marker: str | bytes = current.encode("ascii") if self.files else current
        table = self.table
        return sa.or_(
            *(
                (sa.func.length(table.c[c]) > 0)
                & (sa.func.substr(table.c[c], 1, len(current), type_=table.c[c].type) != marker)
                for c in self.columns
            )
        )

    def reseal(self, ring: Keyring, column: str, value: str | bytes) -> str | bytes:
        """``value`` sealed under the active key (opened first if sealed under another)."""
        if isinstance(value, bytes):
            purpose = blob_purpose(self.name, column)
            plain = ring.decrypt_bytes(value, purpose) if key_id_of(value) else value
            return ring.encrypt_bytes(plain, purpose)
        return ring.encrypt(ring.decrypt(value, column) if key_id_of(value) else value, column)


def _sealed() -> Iterator[_SealedColumns]:
    for name, columns in ENCRYPTED_COLUMNS.items():
        yield _SealedColumns(name, columns, files=False)
    for name, columns in ENCRYPTED_BLOBS.items():
        yield _SealedColumns(name, columns, files=True)


def status(db: Session) -> dict[str, Counter[str]]:
    """How many values each key id seals, per table.column (``(plaintext)`` for unsealed ones)."""
    found: dict[str, Counter[str]] = {}
    for sealed in _sealed():
        table = sealed.table
        for column in sealed.columns:
            counts: Counter[str] = Counter()
            heads = db.execute(sa.select(sealed.head(column)).where(sa.func.length(table.c[column]) > 0))
            for (head,) in heads:
                counts[key_id_of(head) or PLAINTEXT] += 1
            found[f"{sealed.name}.{column}"] = counts
    return found


def rotate(
    session_factory: Callable[[], AbstractContextManager[Session]],
    ring: Keyring,
    batch: int = 500,
    blob_batch: int = 20,
) -> RotationReport:
    """Re-seal everything not under ``ring.active``; one transaction per batch (of ``batch`` rows,
    or ``blob_batch`` rows for the tables of sealed files).

    ``session_factory`` makes trusted (system) sessions: ``app.db.system_session`` in the CLI.
    """
    report = RotationReport()
    for sealed in _sealed():
        table, columns = sealed.table, sealed.columns
        last = 0
        while True:
            with session_factory() as db:
                query = (
                    sa.select(table.c.id, *(table.c[c] for c in columns))
                    .where(table.c.id > last, sealed.stale(ring))
                    .order_by(table.c.id)
                    .limit(blob_batch if sealed.files else batch)
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
                    new = {c: sealed.reseal(ring, c, v) for c, v in old.items()}
                    result = db.execute(
                        sa.update(table)
                        .where(table.c.id == row.id, *(table.c[c] == v for c, v in old.items()))
                        .values(**new)
                    )
                    if result.rowcount == 1:  # type: ignore[attr-defined]
                        report.rows += 1
                        report.rewritten += len(new)
                        report.per_table[sealed.name] += len(new)
                    else:
                        report.skipped += 1
                db.commit()
                report.batches += 1
                last = rows[-1].id
    return report
