"""`minpan backup` / `minpan restore`: a backup of a live database restores into an empty one with
every case, document (its PDF matching its SHA-256), attachment and audit entry intact, the PKI
beside it, ids continuing after the restored ones; a damaged backup or a database that is not
empty is refused. On SQLite by default, on PostgreSQL when the suite runs there."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from app.cases.models import Assignment, Case
from app.db import system_session
from app.documents import services as documents
from app.security.crypto import blob_purpose, keyring
from app.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
SOURCE_URL = get_settings().database_url
IS_POSTGRES = get_settings().is_postgres
TARGET_DB = "minpan_test_e_restore"


def _admin(sql: str) -> None:
    """Run SQL as the PostgreSQL superuser (the role `minpan` may not create databases)."""
    attempts = [
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql],
        ["runuser", "-u", "postgres", "--", "psql", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql],
    ]
    for command in attempts:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            return
    raise RuntimeError(done.stderr)


def _target_url(tmp: Path) -> str:
    if not IS_POSTGRES:
        return f"sqlite:///{tmp / 'restored.sqlite3'}"
    _admin(f"DROP DATABASE IF EXISTS {TARGET_DB} WITH (FORCE)")
    _admin(f"CREATE DATABASE {TARGET_DB} OWNER minpan")
    return SOURCE_URL.rsplit("/", 1)[0] + f"/{TARGET_DB}"


def _minpan(*args: str, url: str, pki: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINPAN_DATABASE_URL": url}
    if pki is not None:
        env["MINPAN_PKI_DIR"] = str(pki)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


TABLES = {
    "cases": "id",
    "assignments": "id",
    "documents": "id",
    "attachments": "id",
    "audit_events": "id",
    "timeline_entries": "id",
    "users": "id",
    "memberships": "id",
}


def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables that matter, read as the trusted system (RLS on PostgreSQL)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if url.startswith("postgresql"):
                conn.execute(text("SELECT set_config('minpan.system', 'on', true)"))
            return {
                table: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))]
                for table, key in TABLES.items()
            }
    finally:
        engine.dispose()


def _files(url: str, table: str, column: str) -> list[tuple[int, str, bytes]]:
    """(id, sha256, content) of every PDF or attachment, opened with the data keys: the backup
    carries them sealed, as stored, and the restore gives back files that open."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if url.startswith("postgresql"):
                conn.execute(text("SELECT set_config('minpan.system', 'on', true)"))
            rows = [
                (r[0], r[1], bytes(r[2]))
                for r in conn.execute(text(f"SELECT id, sha256, {column} FROM {table} ORDER BY id"))
            ]
    finally:
        engine.dispose()
    assert all(stored.startswith(b"enc1:") for _, _, stored in rows), f"{table}.{column} not sealed"
    purpose = blob_purpose(table, column)
    return [(i, sha, keyring().decrypt_bytes(stored, purpose)) for i, sha, stored in rows]


def _pdfs(url: str) -> list[tuple[int, str, bytes]]:
    return _files(url, "documents", "pdf")


@pytest.fixture()
def data(demo: None) -> dict[str, int]:
    """The demo (cases in every stage, an attachment, a published reply) plus documents: a signed
    and sealed reply letter (which creates the PKI) and a several-page case file."""
    with system_session() as db:
        published = db.scalar(select(Case).where(Case.state == "published"))
        assert published is not None
        assignment = db.scalar(select(Assignment).where(Assignment.case_id == published.id))
        documents.issue_for(db, "reply_letter", assignment)
        documents.issue_for(db, "case_file", published)
    with system_session() as db:
        return {"cases": len(list(db.scalars(select(Case.id))))}


def test_backup_restores_into_an_empty_database_with_everything_intact(data: dict[str, int]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="minpan-backup-test-"))
    archive = tmp / "minpan.tar.gz"
    made = _minpan("backup", str(archive), url=SOURCE_URL)
    assert made.returncode == 0, made.stderr
    assert "backup written" in made.stdout
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "manifest.json" in names and any(n.startswith("files/pki/") for n in names)

    before = _snapshot(SOURCE_URL)
    pdfs_before = _pdfs(SOURCE_URL)
    assert len(before["cases"]) == data["cases"] and len(pdfs_before) == 2 and before["audit_events"]

    target = _target_url(tmp)
    pki = tmp / "restored-pki"
    restored = _minpan("restore", str(archive), url=target, pki=pki)
    assert restored.returncode == 0, restored.stderr
    assert "every checksum matched" in restored.stdout

    after = _snapshot(target)
    for table in TABLES:
        assert after[table] == before[table], f"{table} differs after the restore"
    pdfs_after = _pdfs(target)
    assert [(i, s) for i, s, _ in pdfs_after] == [(i, s) for i, s, _ in pdfs_before]
    for _id, sha, pdf in pdfs_after:
        assert hashlib.sha256(pdf).hexdigest() == sha
    attachments = _files(target, "attachments", "data")
    assert attachments == _files(SOURCE_URL, "attachments", "data") and attachments
    assert all(hashlib.sha256(data).hexdigest() == sha for _, sha, data in attachments)
    source_pki = Path(get_settings().pki_dir) if get_settings().pki_dir else get_settings().var_dir / "pki"
    for file in source_pki.rglob("*"):
        if file.is_file():
            assert (pki / file.relative_to(source_pki)).read_bytes() == file.read_bytes()

    # The restored database is in use at once: new rows get new ids (sequences moved on).
    created = _minpan(
        "user", "create", "restored.admin", "--name", "恢复后", "--workspace", "portal-centre",
        "--role", "centre_admin", "--password", "Restore#2026-ok", url=target,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr

    # A second restore into the now populated database is refused.
    again = _minpan("restore", str(archive), url=target, pki=pki)
    assert again.returncode != 0 and "not empty" in again.stderr


def test_a_damaged_backup_is_refused_before_anything_is_written(data: dict[str, int]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="minpan-backup-test-"))
    archive = tmp / "minpan.tar.gz"
    assert _minpan("backup", str(archive), url=SOURCE_URL).returncode == 0
    damaged = tmp / "damaged.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w:gz") as dst:
        for info in src.getmembers():
            body = src.extractfile(info).read()  # type: ignore[union-attr]
            if "_cases.jsonl" in info.name:
                body = body.replace("供暖".encode(), "篡改".encode())
            info.size = len(body)
            import io

            dst.addfile(info, io.BytesIO(body))
    target = _target_url(tmp)
    refused = _minpan("restore", str(damaged), url=target, pki=tmp / "pki")
    assert refused.returncode != 0 and "damaged" in refused.stderr
    from app import migrate

    assert migrate.current_revision(target) is None  # nothing was written
