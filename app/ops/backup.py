"""``minpan backup FILE`` / ``minpan restore FILE``: the whole database and the signing PKI.

Everything the portal stores is in the database — cases, the audit log, attachments and the PDFs
of documents (``documents.pdf``, checked against ``documents.sha256`` on every read) — except the
document-signing PKI (``MINPAN_PKI_DIR``, default ``var/pki``), without which no published PDF
verifies. A backup is one portable ``.tar.gz``:

* ``manifest.json`` — format, time, the Alembic revision of the schema, the source dialect, the
  rows of every table, the SHA-256 of every member;
* ``tables/NNN_<table>.jsonl`` — one JSON array per row, in primary-key order; values that JSON
  has no type for are tagged: ``["b", base64]`` bytes, ``["t", iso]`` UTC timestamps, ``["d", iso]``
  dates, ``["n", "1.5"]`` decimals, ``["j", …]`` JSON documents (a plain value is never a list);
* ``files/pki/…`` — the PKI folder.

The dump is read in one transaction — ``REPEATABLE READ, READ ONLY`` on PostgreSQL, one read
transaction (a WAL snapshot) on SQLite — so it is consistent while the portal runs. It is logical
and portable: a PostgreSQL backup restores into SQLite and back. Every table in the database is
dumped (found by reflection, not from the models), except ``alembic_version`` and SQLite's FTS5
virtual tables and their shadow tables, which the triggers rebuild as the rows are inserted (on
PostgreSQL the tables' own triggers are switched off during the restore and every derived table is
restored as dumped).

``restore`` checks every member's SHA-256 first, brings an **empty** database (no people in it)
to the backup's revision through the migrations, empties the reference tables the migrations
seeded, inserts every row in one transaction (with ``minpan.system = on`` so row-level security
lets the trusted restore write every workspace), moves the PostgreSQL sequences past the restored
ids, then upgrades to this release's head. It refuses a database that has people in it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, MetaData, Table, func, insert, inspect, select, text

from app import migrate
from app.db import get_engine
from app.settings import get_settings

FORMAT = "minpan-backup/1"
SKIPPED = {"alembic_version"}


class BackupError(Exception):
    pass


# --- values ---------------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return ["b", base64.b64encode(bytes(value)).decode("ascii")]
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite keeps UTC, naive
        return ["t", aware.astimezone(UTC).isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, Decimal):
        return ["n", str(value)]
    if isinstance(value, dict | list):
        return ["j", value]
    raise BackupError(f"cannot back up a value of type {type(value).__name__}")


def decode(value: Any, *, sqlite: bool) -> Any:
    if not isinstance(value, list):
        return value
    tag, raw = value
    if tag == "b":
        return base64.b64decode(raw)
    if tag == "t":
        moment = datetime.fromisoformat(raw).astimezone(UTC)
        return moment.replace(tzinfo=None) if sqlite else moment
    if tag == "d":
        return date.fromisoformat(raw)
    if tag == "n":
        return Decimal(raw)
    if tag == "j":
        return raw
    raise BackupError(f"unknown value tag {tag!r}")


# --- tables ---------------------------------------------------------------------------------------


def _tables(conn: Connection) -> list[Table]:
    """Every table of the database in foreign-key order, reflected, minus the skipped ones."""
    names = set(inspect(conn).get_table_names())
    skipped = set(SKIPPED)
    if conn.dialect.name == "sqlite":
        virtual = [
            r[0]
            for r in conn.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%'")
            )
        ]
        for vt in virtual:
            skipped |= {vt} | {n for n in names if n.startswith(f"{vt}_")}
        skipped |= {n for n in names if n.startswith("sqlite_")}
    metadata = MetaData()
    metadata.reflect(conn, only=sorted(names - skipped))
    return list(metadata.sorted_tables)


def _order(table: Table) -> list[Any]:
    pk = list(table.primary_key.columns)
    return pk or list(table.columns)


def _system(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT set_config('minpan.system', 'on', true)"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pki_dir() -> Path:
    from app.documents.signing import pki_root

    return pki_root()


# --- backup ---------------------------------------------------------------------------------------


def backup(path: str | Path, url: str | None = None) -> dict[str, Any]:
    """Write a backup of the database at ``url`` (default: the configured one) to ``path``."""
    from alembic.runtime.migration import MigrationContext

    path = Path(path)
    engine = get_engine() if url is None else _engine(url)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "dialect": engine.dialect.name,
        "tables": {},
        "columns": {},
        "files": {},
        "members": {},
    }
    with tempfile.TemporaryDirectory(prefix="minpan-backup-") as tmp:
        work = Path(tmp)
        (work / "tables").mkdir()
        options: dict[str, Any] = {}
        if engine.dialect.name == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        with engine.connect().execution_options(**options) as conn, conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SET TRANSACTION READ ONLY"))
            _system(conn)
            manifest["revision"] = MigrationContext.configure(conn).get_current_revision()
            if manifest["revision"] is None:
                raise BackupError("the database has no schema: nothing to back up")
            for n, table in enumerate(_tables(conn)):
                member = f"tables/{n:03d}_{table.name}.jsonl"
                columns = [c.name for c in table.columns]
                count = 0
                with (work / member).open("w", encoding="utf-8") as out:
                    result = conn.execution_options(stream_results=True, yield_per=500).execute(
                        select(*table.columns).order_by(*_order(table))
                    )
                    for row in result:
                        out.write(json.dumps([encode(v) for v in row], ensure_ascii=False))
                        out.write("\n")
                        count += 1
                manifest["tables"][table.name] = count
                manifest["columns"][table.name] = columns
                manifest["members"][member] = _sha256(work / member)
        pki = pki_dir()
        if pki.is_dir():
            for file in sorted(p for p in pki.rglob("*") if p.is_file()):
                member = f"files/pki/{file.relative_to(pki).as_posix()}"
                target = work / member
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, target)
                manifest["files"][member] = _sha256(target)
        (work / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
        partial = path.with_name(path.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(work / "manifest.json", arcname="manifest.json")
            for member in [*manifest["members"], *manifest["files"]]:
                tar.add(work / member, arcname=member)
        partial.chmod(0o600)  # it holds password hashes, citizens' data and private keys
        partial.replace(path)
    return manifest


# --- restore --------------------------------------------------------------------------------------


def _engine(url: str) -> Any:
    from app.db import engine_for

    return engine_for(url)


def read_manifest(path: str | Path) -> dict[str, Any]:
    with tarfile.open(path, "r:gz") as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise BackupError("not a Minpan backup: no manifest.json")
        manifest: dict[str, Any] = json.load(member)
    if manifest.get("format") != FORMAT:
        raise BackupError(f"not a {FORMAT} backup: {manifest.get('format')!r}")
    return manifest


def _extract(path: Path, work: Path) -> dict[str, Any]:
    manifest = read_manifest(path)
    expected = {**manifest["members"], **manifest["files"]}
    with tarfile.open(path, "r:gz") as tar:
        for info in tar.getmembers():
            if info.name == "manifest.json":
                continue
            if info.name not in expected or not info.isfile():
                raise BackupError(f"unexpected member {info.name!r} in the backup")
            tar.extract(info, work, filter="data")
    for member, digest in expected.items():
        file = work / member
        if not file.is_file():
            raise BackupError(f"{member} is missing from the backup")
        if _sha256(file) != digest:
            raise BackupError(f"{member} is damaged (SHA-256 does not match the manifest)")
    return manifest


def _rows(file: Path) -> Iterator[list[Any]]:
    with file.open(encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def restore(path: str | Path, url: str | None = None) -> dict[str, Any]:
    """Restore ``path`` into the empty database at ``url`` (default: the configured one)."""
    path = Path(path)
    url = url or get_settings().database_url
    with tempfile.TemporaryDirectory(prefix="minpan-restore-") as tmp:
        work = Path(tmp)
        manifest = _extract(path, work)
        revision = manifest["revision"]
        engine = _engine(url)
        current = migrate.current_revision(url)
        if current is not None:
            with engine.connect() as conn:
                has_users = inspect(conn).has_table("users") and (
                    conn.execute(select(func.count()).select_from(text("users"))).scalar() or 0
                )
            if has_users:
                raise BackupError("the database is not empty (it has people in it): restore into a new one")
            if current != revision:
                migrate.downgrade(url, "base")
        migrate.upgrade(url, revision)
        sqlite = engine.dialect.name == "sqlite"
        with engine.connect() as conn, conn.begin():
            if sqlite:
                conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")  # checked at the commit
            _system(conn)
            tables = {t.name: t for t in _tables(conn)}
            missing = set(manifest["tables"]) - set(tables)
            if missing:
                raise BackupError(f"tables missing at revision {revision}: {sorted(missing)}")
            quote = conn.dialect.identifier_preparer.quote
            if not sqlite:
                # Rows are restored exactly as dumped, derived tables included: the triggers that
                # maintain them (search terms, …) must not add their own copies. The app's role owns
                # its tables, so it may; this is DDL inside the transaction, undone with it.
                for table in tables.values():
                    conn.execute(text(f"ALTER TABLE {quote(table.name)} DISABLE TRIGGER USER"))
            for table in reversed(list(tables.values())):  # reference data seeded by migrations
                conn.execute(table.delete())
            members = {m.split("_", 1)[1].removesuffix(".jsonl"): m for m in manifest["members"]}
            for name, table in tables.items():
                if name not in members:
                    continue
                columns = manifest["columns"][name]
                batch: list[dict[str, Any]] = []
                for row in _rows(work / members[name]):
                    batch.append({c: decode(v, sqlite=sqlite) for c, v in zip(columns, row, strict=True)})
                    if len(batch) >= 500:
                        conn.execute(insert(table), batch)
                        batch = []
                if batch:
                    conn.execute(insert(table), batch)
                count = conn.execute(select(func.count()).select_from(table)).scalar()
                if count != manifest["tables"][name]:
                    raise BackupError(f"{name}: {count} rows restored, {manifest['tables'][name]} expected")
            if not sqlite:
                _advance_sequences(conn, list(tables.values()))
                for table in tables.values():
                    conn.execute(text(f"ALTER TABLE {quote(table.name)} ENABLE TRIGGER USER"))
        _restore_files(work, manifest)
        migrate.upgrade(url)
    return manifest


def _advance_sequences(conn: Connection, tables: list[Table]) -> None:
    """Move each serial/identity sequence past the ids just inserted (PostgreSQL)."""
    quote = conn.dialect.identifier_preparer.quote
    for table in tables:
        for column in table.primary_key.columns:
            try:
                if column.type.python_type is not int:
                    continue
            except NotImplementedError:
                continue
            sequence = conn.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": quote(table.name), "c": column.name}
            ).scalar()
            if sequence is None:
                continue
            top = conn.execute(select(func.max(table.c[column.name]))).scalar()
            conn.execute(
                text("SELECT setval(:s, :v, :called)"),
                {"s": sequence, "v": top or 1, "called": top is not None},
            )


def _restore_files(work: Path, manifest: dict[str, Any]) -> None:
    if not manifest["files"]:
        return
    pki = pki_dir()
    if pki.exists() and any(pki.iterdir()):
        kept = pki.with_name(f"{pki.name}.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%S}")
        pki.rename(kept)
    for member in manifest["files"]:
        target = pki / member.removeprefix("files/pki/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(work / member, target)
        target.chmod(0o600)
