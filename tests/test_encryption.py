"""Citizens' contact data sealed at rest (AES-256-GCM), key rotation, and who sees it in full."""

from __future__ import annotations

import base64
from collections import Counter
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, select, text

from app import migrate
from app.cases.models import Assignment, Case
from app.db import system_session
from app.security.crypto import (
    ENCRYPTED_BLOBS,
    ENCRYPTED_COLUMNS,
    DecryptionError,
    EncryptedBytes,
    EncryptedText,
    KeyConfigError,
    Keyring,
    blob_purpose,
    generate_key_line,
    key_id_of,
    keyring,
    parse_keys,
    use_keyring,
)
from app.security.rotation import PLAINTEXT, rotate, status
from app.settings import load_settings
from tests.conftest import IS_POSTGRES
from tests.helpers import sign_in
from tests.test_migrations import _drop, _scratch_url

HEATING = "TL-2026-110301"  # demo: 王先生, 13847511000, dispatched to 科尔沁区 (lead) and 住建局
PHONE = "13847511000"


def _raw(table: str, column: str, where: str = "") -> list[str]:
    with system_session() as db:
        return [r[0] for r in db.execute(text(f"SELECT {column} FROM {table} {where} ORDER BY id"))]


def _heating_ids() -> tuple[int, int]:
    with system_session() as db:
        case_id = db.scalar(select(Case.id).where(Case.source_id == HEATING))
        lead = db.scalar(select(Assignment.id).where(Assignment.case_id == case_id, Assignment.is_lead))
    assert case_id and lead
    return case_id, lead


def _ring(*lines: str) -> Keyring:
    return Keyring.from_spec(",".join(lines))


# --- the cipher -------------------------------------------------------------------------------------


def test_a_sealed_value_opens_only_with_its_key_and_purpose() -> None:
    ring = _ring(generate_key_line("a1"))
    sealed = ring.encrypt(PHONE, "citizen_phone")
    assert sealed.startswith("enc1:a1:") and PHONE not in sealed
    assert ring.encrypt(PHONE, "citizen_phone") != sealed  # a fresh nonce every time
    assert ring.decrypt(sealed, "citizen_phone") == PHONE
    assert ring.encrypt("", "citizen_phone") == "" and ring.decrypt("", "citizen_phone") == ""
    # Moved to another column: refused (the purpose is authenticated).
    with pytest.raises(DecryptionError):
        ring.decrypt(sealed, "citizen_email")
    # Another key under the same id: refused.
    with pytest.raises(DecryptionError):
        _ring(generate_key_line("a1")).decrypt(sealed, "citizen_phone")
    # A key id nobody configured: refused, and says which.
    with pytest.raises(DecryptionError, match="a1"):
        _ring(generate_key_line("b1")).decrypt(sealed, "citizen_phone")
    # Relabelled with another configured key's id: refused (the key id is authenticated too).
    two = _ring(generate_key_line("b1"), generate_key_line("a2"))
    with pytest.raises(DecryptionError):
        two.decrypt(sealed.replace("enc1:a1:", "enc1:b1:"), "citizen_phone")
    # A plaintext where a sealed value belongs: refused, never shown as if it were fine.
    with pytest.raises(DecryptionError):
        ring.decrypt(PHONE, "citizen_phone")


@pytest.mark.parametrize("position", [0, 5, 20, -1])
def test_any_flipped_byte_of_a_sealed_value_is_detected(position: int) -> None:
    ring = _ring(generate_key_line("a1"))
    sealed = ring.encrypt("王小明 13847511000", "citizen_name")
    body = sealed[len("enc1:a1:") :]
    blob = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    blob[position] ^= 0x01
    tampered = "enc1:a1:" + base64.urlsafe_b64encode(bytes(blob)).decode().rstrip("=")
    with pytest.raises(DecryptionError):
        ring.decrypt(tampered, "citizen_name")
    with pytest.raises(DecryptionError):
        ring.decrypt(sealed[:-6], "citizen_name")  # truncated


# The head of a PDF and an identity card's number: what must not be found in a sealed file.
SCAN = b"%PDF-1.7\n" + "居民身份证 150502199001011234 王小明".encode() + bytes(range(256)) * 40


def test_a_sealed_file_opens_only_with_its_key_and_purpose() -> None:
    ring = _ring(generate_key_line("a1"))
    sealed = ring.encrypt_bytes(SCAN, "attachments.data")
    # b"enc1:a1:" + 12-byte nonce + ciphertext + 16-byte tag: raw bytes, no base64.
    assert sealed.startswith(b"enc1:a1:") and len(sealed) == len(b"enc1:a1:") + 12 + len(SCAN) + 16
    assert b"%PDF" not in sealed and b"150502199001011234" not in sealed
    assert key_id_of(sealed) == "a1" and key_id_of(sealed[:40]) == "a1" and key_id_of(SCAN) is None
    assert ring.encrypt_bytes(SCAN, "attachments.data") != sealed  # a fresh nonce every time
    assert ring.decrypt_bytes(sealed, "attachments.data") == SCAN
    assert ring.encrypt_bytes(b"", "attachments.data") == b"" and ring.decrypt_bytes(b"", "x") == b""
    with pytest.raises(DecryptionError):  # an attachment copied into documents.pdf does not open
        ring.decrypt_bytes(sealed, "documents.pdf")
    with pytest.raises(DecryptionError, match="a1"):  # a key nobody configured
        _ring(generate_key_line("b1")).decrypt_bytes(sealed, "attachments.data")
    with pytest.raises(DecryptionError):  # another key under the same id
        _ring(generate_key_line("a1")).decrypt_bytes(sealed, "attachments.data")
    with pytest.raises(DecryptionError):  # a plaintext file where a sealed one belongs
        ring.decrypt_bytes(SCAN, "attachments.data")
    # The text and the byte forms are one cipher: the same purpose and key open either.
    text_form = ring.encrypt("王小明", "documents.pdf")
    body64 = text_form[len("enc1:a1:") :]
    body = base64.urlsafe_b64decode(body64 + "=" * (-len(body64) % 4))
    assert ring.decrypt_bytes(b"enc1:a1:" + body, "documents.pdf") == "王小明".encode()


@pytest.mark.parametrize("position", [len(b"enc1:a1:"), 20, 500, -1])
def test_any_flipped_byte_of_a_sealed_file_is_detected(position: int) -> None:
    ring = _ring(generate_key_line("a1"))
    sealed = bytearray(ring.encrypt_bytes(SCAN, "documents.pdf"))
    sealed[position] ^= 0x01
    with pytest.raises(DecryptionError):
        ring.decrypt_bytes(bytes(sealed), "documents.pdf")
    with pytest.raises(DecryptionError):
        ring.decrypt_bytes(ring.encrypt_bytes(SCAN, "documents.pdf")[:-1], "documents.pdf")  # truncated


def test_the_models_seal_every_column_the_rotation_knows_of() -> None:
    """``ENCRYPTED_COLUMNS``/``ENCRYPTED_BLOBS`` drive rotation and status; the models must seal
    exactly those, with the purposes the rotation re-seals them under."""
    import app.models  # noqa: F401
    from app.db import Base

    for name, columns in ENCRYPTED_COLUMNS.items():
        for column in columns:
            kind = Base.metadata.tables[name].c[column].type
            assert isinstance(kind, EncryptedText) and kind.purpose == column, (name, column)
    for name, columns in ENCRYPTED_BLOBS.items():
        for column in columns:
            kind = Base.metadata.tables[name].c[column].type
            assert isinstance(kind, EncryptedBytes) and kind.purpose == blob_purpose(name, column)
    assert blob_purpose("documents", "pdf") == "documents.pdf"


@pytest.mark.parametrize(
    "spec",
    ["", "k1", "k1:not-base64!", "k1:" + base64.b64encode(b"short").decode(), "bad id:" + "A" * 44],
)
def test_malformed_key_settings_are_refused(spec: str) -> None:
    with pytest.raises(KeyConfigError):
        parse_keys(spec)


def test_two_entries_with_one_id_are_refused_and_the_first_entry_is_active() -> None:
    a, b = generate_key_line("k2"), generate_key_line("k1")
    assert parse_keys(f"{a},{b}")[0] == "k2"
    with pytest.raises(KeyConfigError):
        parse_keys(f"{a},{a}")


def test_production_refuses_to_start_without_data_keys() -> None:
    env = {
        "MINPAN_ENVIRONMENT": "production",
        "MINPAN_SECRET_KEY": "x" * 40,
        "MINPAN_DATABASE_URL": "postgresql+psycopg://minpan@db/minpan",
        "MINPAN_BROKER_URL": "redis://redis:6379/0",
    }
    with pytest.raises(RuntimeError, match="MINPAN_DATA_KEYS"):
        load_settings(env)
    assert load_settings({**env, "MINPAN_DATA_KEYS": generate_key_line("k1")}).data_keys


# --- at rest -----------------------------------------------------------------------------------------


def test_contact_data_is_sealed_in_the_database_and_plain_in_the_application(demo: None) -> None:
    case_id, lead = _heating_ids()
    for table, row in (("cases", case_id), ("assignments", lead)):
        phone = _raw(table, "citizen_phone", f"WHERE id = {row}")[0]
        assert phone.startswith(f"enc1:{keyring().active}:") and PHONE not in phone
        name = _raw(table, "citizen_name", f"WHERE id = {row}")[0]
        assert name.startswith("enc1:") and "王" not in name
    with system_session() as db:
        case = db.get(Case, case_id)
        assignment = db.get(Assignment, lead)
        assert case and assignment
        assert (case.citizen_name, case.citizen_phone) == ("王先生", PHONE)
        assert assignment.citizen_phone == PHONE  # the 承办单's copy opens alike
    # Nothing of it in plain anywhere in those tables.
    for table in ("cases", "assignments"):
        for column in ("citizen_name", "citizen_phone", "citizen_email"):
            assert all(v == "" or key_id_of(v) for v in _raw(table, column))


def test_a_tampered_value_in_the_database_is_an_error_not_a_wrong_answer(demo: None) -> None:
    case_id, _ = _heating_ids()
    sealed = _raw("cases", "citizen_phone", f"WHERE id = {case_id}")[0]
    tampered = sealed[:-3] + ("AAA" if sealed[-3:] != "AAA" else "BBB")
    email = _raw("cases", "citizen_email", f"WHERE id = {case_id}")[0]
    with system_session() as db:
        db.execute(text("UPDATE cases SET citizen_phone = :v WHERE id = :id"), {"v": tampered, "id": case_id})
    with pytest.raises(DecryptionError), system_session() as db:
        db.get(Case, case_id)
    # The phone's ciphertext copied into the e-mail column does not open either.
    with system_session() as db:
        db.execute(
            text("UPDATE cases SET citizen_phone = :p, citizen_email = :p WHERE id = :id"),
            {"p": sealed, "id": case_id},
        )
    with pytest.raises(DecryptionError), system_session() as db:
        db.get(Case, case_id)
    with system_session() as db:
        db.execute(text("UPDATE cases SET citizen_email = :e WHERE id = :id"), {"e": email, "id": case_id})
        assert db.get(Case, case_id).citizen_phone == PHONE  # type: ignore[union-attr]


def _heating_files() -> tuple[int, int]:
    """The 承办单 of the heating case (issued now: it prints 王先生 and his phone) and the demo's
    photo attached to the case: (document id, attachment id)."""
    from app.cases.models import Attachment
    from app.documents import services as documents

    case_id, lead = _heating_ids()
    with system_session() as db:
        document = documents.issue_for(db, "assignment_sheet", db.get_one(Assignment, lead))
        db.flush()
        photo = db.scalar(select(Attachment.id).where(Attachment.case_id == case_id))
        assert photo
        return document.id, photo


def _raw_file(table: str, row: int) -> bytes:
    column = ENCRYPTED_BLOBS[table][0]
    return bytes(_raw(table, column, f"WHERE id = {row}")[0])


def test_files_are_sealed_in_the_database_and_plain_in_the_application(demo: None) -> None:
    import hashlib

    from sqlalchemy.orm import undefer

    from app.cases.models import Attachment
    from app.documents import services as documents

    document_id, photo = _heating_files()
    stored = _raw_file("documents", document_id)
    assert stored.startswith(f"enc1:{keyring().active}:".encode()) and b"%PDF" not in stored
    assert PHONE.encode() not in stored
    stored_photo = _raw_file("attachments", photo)
    assert stored_photo.startswith(b"enc1:") and b"\x89PNG" not in stored_photo
    with system_session() as db:
        document = documents.get(db, document_id, with_pdf=True)
        assert document is not None
        pdf = documents.pdf_bytes(document)  # checked against the sha256 of the plain PDF
        assert pdf.startswith(b"%PDF") and hashlib.sha256(pdf).hexdigest() == document.sha256
        assert len(pdf) == document.size < len(stored)
        attachment = db.get_one(Attachment, photo, options=[undefer(Attachment.data)])
        assert attachment.data.startswith(b"\x89PNG")
        assert hashlib.sha256(attachment.data).hexdigest() == attachment.sha256
    counts = {column: status_of(column) for column in ("documents.pdf", "attachments.data")}
    assert counts == {
        "documents.pdf": Counter({keyring().active: 1}),
        "attachments.data": Counter({keyring().active: 1}),
    }


def test_the_status_reads_only_the_key_id_of_each_file_never_the_file(demo: None) -> None:
    _heating_files()
    read: list[int] = []
    with system_session() as db:
        original = db.execute

        def execute(statement, *args, **kw):  # type: ignore[no-untyped-def]
            rows = original(statement, *args, **kw).all()
            read.extend(len(v) for row in rows for v in row if isinstance(v, str | bytes))
            return iter(rows)

        db.execute = execute  # type: ignore[method-assign]
        found = status(db)
    assert found["documents.pdf"] == Counter({keyring().active: 1})
    assert read and max(read) <= len("enc1:") + 32 + 1  # the header at most: no PDF, no photo


def test_a_tampered_file_is_an_error_not_a_wrong_answer(make_client) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.orm import undefer

    from app.cases.models import Attachment

    document_id, photo = _heating_files()
    case_id, _ = _heating_ids()
    sealed_pdf, sealed_photo = _raw_file("documents", document_id), _raw_file("attachments", photo)
    flipped = bytearray(sealed_photo)
    flipped[len(flipped) // 2] ^= 0x01
    _write_file("attachments", photo, bytes(flipped))
    with pytest.raises(DecryptionError), system_session() as db:
        db.get(Attachment, photo, options=[undefer(Attachment.data)])
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    answer = clerk.get(f"/cases/{case_id}/attachments/{photo}")
    assert answer.status_code == 500 and not answer.content.startswith(b"\x89PNG")
    # The 承办单's sealed bytes put in the attachment's place do not open there (bound to documents.pdf).
    _write_file("attachments", photo, sealed_pdf)
    assert clerk.get(f"/cases/{case_id}/attachments/{photo}").status_code == 500
    truncated = sealed_pdf[: len(sealed_pdf) // 2]
    _write_file("documents", document_id, truncated)
    answer = clerk.get(f"/documents/{document_id}")
    assert answer.status_code == 500 and b"%PDF" not in answer.content
    _write_file("attachments", photo, sealed_photo)
    _write_file("documents", document_id, sealed_pdf)
    assert clerk.get(f"/cases/{case_id}/attachments/{photo}").content.startswith(b"\x89PNG")
    assert clerk.get(f"/documents/{document_id}").content.startswith(b"%PDF")


def _write_file(table: str, row: int, value: bytes) -> None:
    column = ENCRYPTED_BLOBS[table][0]
    with system_session() as db:
        db.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = :id"), {"v": value, "id": row})


def test_a_file_in_plaintext_is_refused_and_rotation_seals_it(make_client) -> None:  # type: ignore[no-untyped-def]
    """A file written into the table unsealed is never served as if it were right (a planted
    file); ``minpan keys rotate`` seals such a value."""
    from sqlalchemy.orm import undefer

    from app.cases.models import Attachment

    _, photo = _heating_files()
    case_id, _ = _heating_ids()
    _write_file("attachments", photo, SCAN)
    with pytest.raises(DecryptionError), system_session() as db:
        db.get_one(Attachment, photo, options=[undefer(Attachment.data)])
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    answer = clerk.get(f"/cases/{case_id}/attachments/{photo}")
    assert answer.status_code == 500 and SCAN not in answer.content
    assert status_of("attachments.data") == Counter({PLAINTEXT: 1})
    report = rotate(system_session, keyring(), blob_batch=1)
    assert report.per_table == Counter({"attachments": 1})
    stored = _raw_file("attachments", photo)
    assert stored.startswith(b"enc1:") and b"150502199001011234" not in stored
    with system_session() as db:
        attachment = db.get_one(Attachment, photo, options=[undefer(Attachment.data)])
        assert attachment.data == SCAN
        attachment.data = SCAN + b"\n"  # a new write: sealed at once
    assert _raw_file("attachments", photo).startswith(b"enc1:")
    assert PLAINTEXT not in status_of("attachments.data")
    assert clerk.get(f"/cases/{case_id}/attachments/{photo}").content == SCAN + b"\n"


# --- rotation ----------------------------------------------------------------------------------------


def test_rotation_reseals_in_batches_the_old_key_reads_until_then_and_can_go_afterwards(demo: None) -> None:
    from sqlalchemy.orm import undefer

    from app.cases.models import Attachment
    from app.documents import services as documents

    old = keyring()
    old_line = f"{old.active}:{base64.b64encode(old.keys[old.active]).decode()}"
    new_line = generate_key_line("rot2")
    both = _ring(new_line, old_line)  # the new key first: it seals from now on
    only_new = _ring(new_line)
    case_id, lead = _heating_ids()
    document_id, photo = _heating_files()
    with system_session() as db:
        version = db.get(Case, case_id).version  # type: ignore[union-attr]
        pdf = documents.pdf_bytes(documents.get(db, document_id, with_pdf=True))  # type: ignore[arg-type]

    # Before rotation the old key is still needed: without it the rows do not open.
    with use_keyring(only_new), pytest.raises(DecryptionError), system_session() as db:
        db.get(Case, case_id)
    with use_keyring(only_new), pytest.raises(DecryptionError), system_session() as db:
        documents.get(db, document_id, with_pdf=True)

    with use_keyring(both):
        with system_session() as db:  # old rows read with the old key, new writes use the new one
            assert db.get(Case, case_id).citizen_phone == PHONE  # type: ignore[union-attr]
            before = status(db)
        assert before["cases.citizen_phone"][old.active] >= 7
        assert before["documents.pdf"] == before["attachments.data"] == Counter({old.active: 1})
        report = rotate(system_session, both, batch=2, blob_batch=1)
        assert report.batches >= 4 and report.rewritten >= 14 and report.skipped == 0
        assert report.per_table["documents"] == report.per_table["attachments"] == 1
        with system_session() as db:
            after = status(db)
        assert all(set(counts) <= {"rot2"} for counts in after.values()), after
        assert after["documents.pdf"] == after["attachments.data"] == Counter({"rot2": 1})
        assert rotate(system_session, both, batch=2, blob_batch=1).rewritten == 0  # nothing left to do

    with use_keyring(only_new), system_session() as db:  # the old key can now be removed
        case = db.get(Case, case_id)
        assert case and case.citizen_phone == PHONE and case.version == version  # nobody's form goes stale
        assert db.get(Assignment, lead).citizen_name == "王先生"  # type: ignore[union-attr]
        assert all(v.startswith("enc1:rot2:") for v in _raw("cases", "citizen_phone") if v)
        document = documents.get(db, document_id, with_pdf=True)
        assert document is not None and documents.pdf_bytes(document) == pdf  # sha256 checked
        assert db.get_one(Attachment, photo, options=[undefer(Attachment.data)]).data.startswith(b"\x89PNG")
    assert _raw_file("documents", document_id).startswith(b"enc1:rot2:")
    assert _raw_file("attachments", photo).startswith(b"enc1:rot2:")


def test_rotation_leaves_a_row_someone_changed_meanwhile_as_they_wrote_it(demo: None) -> None:
    """Compare-and-swap: a value that changed between the batch's read and its write is not overwritten."""
    from contextlib import contextmanager

    old = keyring()
    new = _ring(generate_key_line("rot3"), f"{old.active}:{base64.b64encode(old.keys[old.active]).decode()}")
    case_id, _ = _heating_ids()
    edited = []

    @contextmanager
    def racing():  # type: ignore[no-untyped-def]
        with system_session() as db:
            original = db.execute

            def execute(statement, *args, **kw):  # type: ignore[no-untyped-def]
                is_write = getattr(statement, "is_update", False) and "citizen" in str(statement)
                if is_write and not edited:  # someone saves the case just before our first write
                    edited.append(True)
                    original(
                        text("UPDATE cases SET citizen_phone = :v WHERE id = :id"),
                        {"v": new.encrypt("13900000000", "citizen_phone"), "id": case_id},
                    )
                return original(statement, *args, **kw)

            db.execute = execute  # type: ignore[method-assign]
            yield db

    report = rotate(racing, new, batch=100)
    assert edited and report.skipped == 1
    with use_keyring(new), system_session() as db:
        assert db.get(Case, case_id).citizen_phone == "13900000000"  # type: ignore[union-attr]


def test_the_keys_commands_generate_report_and_rotate(demo: None) -> None:
    from app.cli import main

    runner = CliRunner()
    generated = runner.invoke(main, ["keys", "generate", "--id", "cli9"])
    assert generated.exit_code == 0, generated.output
    line = generated.output.strip()
    assert parse_keys(line)[0] == "cli9"
    old = keyring()
    ring = _ring(line, f"{old.active}:{base64.b64encode(old.keys[old.active]).decode()}")
    with use_keyring(ring):
        shown = runner.invoke(main, ["keys", "status"])
        assert (
            shown.exit_code == 0
            and "cases.citizen_phone" in shown.output
            and f"{old.active}=" in shown.output
        )
        assert "documents.pdf" in shown.output and "attachments.data" in shown.output
        rotated = runner.invoke(main, ["keys", "rotate", "--batch", "3", "--blob-batch", "1"])
        assert rotated.exit_code == 0, rotated.output
        assert "with key cli9" in rotated.output
        shown = runner.invoke(main, ["keys", "status"])
        assert f"{old.active}=" not in shown.output and "cli9=" in shown.output
        assert PLAINTEXT not in shown.output


# --- the migration -----------------------------------------------------------------------------------


def test_migration_0023_seals_existing_rows_and_the_downgrade_opens_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url, handle = _scratch_url(tmp_path)
    ring = _ring(generate_key_line("mig1"))
    engine = create_engine(url)
    try:
        migrate.upgrade(url, "0022")
        now = datetime.now(UTC).replace(tzinfo=None)
        with engine.begin() as conn:
            _trusted(conn)
            ws = _insert(conn, "workspaces", {"slug": "centre", "name": "运维中心", "kind": "centre"}, now)
            case = _insert(
                conn,
                "cases",
                {
                    "workspace_id": ws,
                    "source_id": "M-1",
                    "citizen_name": "王小明",
                    "citizen_phone": PHONE,
                    "citizen_email": "",
                    "state": "received",
                },
                now,
            )
            _insert(
                conn,
                "assignments",
                {
                    "workspace_id": ws,
                    "case_id": case,
                    "citizen_name": "王小明",
                    "citizen_phone": PHONE,
                    "citizen_email": "wxm@example.cn",
                    "due_date": now.date(),
                },
                now,
            )
        with use_keyring(ring):
            migrate.upgrade(url, "0023")
            with engine.connect() as conn:
                _trusted(conn)
                rows = conn.execute(
                    text("SELECT citizen_name, citizen_phone, citizen_email FROM assignments")
                ).all()
                sealed = rows[0]
                assert all(v.startswith("enc1:mig1:") for v in sealed)
                assert ring.decrypt(sealed[2], "citizen_email") == "wxm@example.cn"
                case_row = conn.execute(text("SELECT citizen_phone, citizen_email FROM cases")).one()
                assert ring.decrypt(case_row[0], "citizen_phone") == PHONE and case_row[1] == ""
            if IS_POSTGRES:
                types = {c["name"]: str(c["type"]) for c in inspect(engine).get_columns("cases")}
                assert types["citizen_phone"] == "TEXT"
            migrate.downgrade(url, "0022")
            with engine.connect() as conn:
                _trusted(conn)
                plain = conn.execute(
                    text("SELECT citizen_name, citizen_phone, citizen_email FROM assignments")
                ).one()
                assert tuple(plain) == ("王小明", PHONE, "wxm@example.cn")
            if IS_POSTGRES:
                types = {c["name"]: str(c["type"]) for c in inspect(engine).get_columns("cases")}
                assert types["citizen_phone"].startswith("VARCHAR(40)")
            migrate.upgrade(url, "0023")  # and up again
    finally:
        engine.dispose()
        _drop(handle)


def test_a_second_factor_secret_in_plaintext_is_refused_and_rotation_seals_it(demo: None) -> None:
    """A secret written into the table unsealed is never used as if it were right (sign-in codes
    from a planted secret); ``minpan keys rotate`` seals such a value."""
    from app.accounts.models import User

    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    with system_session() as db:
        user = db.scalar(select(User).where(User.username == "horqin.principal"))
        assert user is not None
        user_id = user.id
        db.execute(text("UPDATE users SET totp_secret = :s WHERE id = :i"), {"s": secret, "i": user_id})
    with pytest.raises(DecryptionError), system_session() as db:
        db.get_one(User, user_id)
    assert status_of("users.totp_secret")[PLAINTEXT] == 1
    rotate(system_session, keyring(), batch=50)
    stored = _raw("users", "totp_secret", f"WHERE id = {user_id}")[0]
    assert stored.startswith("enc1:") and secret not in stored
    with system_session() as db:
        assert db.get_one(User, user_id).totp_secret == secret
        db.get_one(User, user_id).totp_secret = "KRSXG5CTMVRXEZLU"  # a new enrolment: sealed at once
    assert _raw("users", "totp_secret", f"WHERE id = {user_id}")[0].startswith("enc1:")
    assert PLAINTEXT not in status_of("users.totp_secret")


def status_of(column: str) -> Counter[str]:
    with system_session() as db:
        return status(db)[column]


def test_migration_0025_seals_the_second_factors_secret_and_the_downgrade_opens_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url, handle = _scratch_url(tmp_path)
    ring = _ring(generate_key_line("mig2"))
    engine = create_engine(url)
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    try:
        migrate.upgrade(url, "0024")
        now = datetime.now(UTC).replace(tzinfo=None)
        with engine.begin() as conn:
            _trusted(conn)
            enrolled = _insert(conn, "users", {"username": "leader", "totp_secret": secret}, now)
            _insert(conn, "users", {"username": "handler", "totp_secret": ""}, now)
        with use_keyring(ring):
            migrate.upgrade(url, "0025")
            with engine.connect() as conn:
                stored = dict(conn.execute(text("SELECT username, totp_secret FROM users")).all())
            assert stored["leader"].startswith("enc1:mig2:") and secret not in stored["leader"]
            assert ring.decrypt(stored["leader"], "totp_secret") == secret and stored["handler"] == ""
            with pytest.raises(DecryptionError):  # bound to its purpose: not a citizen's phone
                ring.decrypt(stored["leader"], "citizen_phone")
            migrate.upgrade(url, "0025")  # a re-run leaves sealed values alone
            migrate.downgrade(url, "0024")
            with engine.connect() as conn:
                plain = conn.execute(
                    text("SELECT totp_secret FROM users WHERE id = :i"), {"i": enrolled}
                ).scalar()
            assert plain == secret
    finally:
        engine.dispose()
        _drop(handle)


def test_migration_0027_seals_the_files_and_the_downgrade_opens_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url, handle = _scratch_url(tmp_path)
    ring = _ring(generate_key_line("mig3"))
    engine = create_engine(url)
    pdf = b"%PDF-1.7\n" + f"承办单 王小明 {PHONE}".encode() + bytes(range(256)) * 400  # ~100 KB
    try:
        migrate.upgrade(url, "0026")
        now = datetime.now(UTC).replace(tzinfo=None)
        with engine.begin() as conn:
            _trusted(conn)
            ws = _insert(conn, "workspaces", {"slug": "centre", "name": "运维中心", "kind": "centre"}, now)
            case = _insert(conn, "cases", {"workspace_id": ws, "source_id": "M-1", "state": "received"}, now)
            files = {"workspace_id": ws, "case_id": case, "sha256": "x" * 64}
            sheet = _insert(conn, "documents", {**files, "kind": "assignment_sheet", "pdf": pdf}, now)
            empty = _insert(conn, "documents", {**files, "kind": "case_file", "pdf": b""}, now)
            scan = _insert(conn, "attachments", {**files, "filename": "身份证.pdf", "data": SCAN}, now)
            # One sealed already by the previous release (the expand step), under a key still listed.
            sealed = ring.encrypt_bytes(b"%PDF-1.7 sealed before", "documents.pdf")
            again = _insert(conn, "documents", {**files, "kind": "reply_letter", "pdf": sealed}, now)

        def stored() -> dict[tuple[str, int], bytes]:
            with engine.connect() as conn:
                _trusted(conn)
                found = {
                    ("documents", i): bytes(v) for i, v in conn.execute(text("SELECT id, pdf FROM documents"))
                }
                found |= {
                    ("attachments", i): bytes(v)
                    for i, v in conn.execute(text("SELECT id, data FROM attachments"))
                }
            return found

        with use_keyring(ring):
            migrate.upgrade(url, "0027")
            after = stored()
            assert (
                after["documents", sheet].startswith(b"enc1:mig3:")
                and b"%PDF" not in after["documents", sheet]
            )
            assert PHONE.encode() not in after["documents", sheet]
            assert ring.decrypt_bytes(after["documents", sheet], "documents.pdf") == pdf
            assert after["attachments", scan].startswith(b"enc1:mig3:")
            assert b"150502199001011234" not in after["attachments", scan]
            assert ring.decrypt_bytes(after["attachments", scan], "attachments.data") == SCAN
            assert after["documents", empty] == b"" and after["documents", again] == sealed  # left alone
            with pytest.raises(DecryptionError):  # bound to its column: a PDF is not an attachment
                ring.decrypt_bytes(after["documents", sheet], "attachments.data")
            migrate.upgrade(url, "0027")  # a re-run leaves sealed files alone
            assert stored() == after
            migrate.downgrade(url, "0026")
            plain = stored()
            assert plain["documents", sheet] == pdf and plain["attachments", scan] == SCAN
            assert plain["documents", again] == b"%PDF-1.7 sealed before" and plain["documents", empty] == b""
    finally:
        engine.dispose()
        _drop(handle)


def _trusted(conn) -> None:  # type: ignore[no-untyped-def]
    """Row-level security lets trusted code see every workspace's rows (PostgreSQL)."""
    if IS_POSTGRES:
        conn.execute(text("SELECT set_config('minpan.system', 'on', true)"))


def _insert(conn, table: str, values: dict[str, object], now: datetime) -> int:  # type: ignore[no-untyped-def]
    """A row with ``values`` and a plausible filler in every other required column."""
    import sqlalchemy as sa

    columns = inspect(conn).get_columns(table)
    row: dict[str, object] = {}
    for column in columns:
        name = column["name"]
        if name in values:
            row[name] = values[name]
        elif name == "id" or column["nullable"] or column.get("default") is not None:
            continue
        else:
            kind = str(column["type"]).upper()
            row[name] = (
                1
                if "INT" in kind
                else False
                if "BOOL" in kind
                else now.date()
                if kind == "DATE"
                else now
                if "TIME" in kind or "DATE" in kind
                else "x"
                if "CHAR" in kind or "TEXT" in kind
                else b""
                if "BLOB" in kind or "BYTEA" in kind
                else "x"
            )
    result = conn.execute(
        sa.table(table, *(sa.column(c) for c in row)).insert().values(**row).returning(sa.column("id"))
    )
    return int(result.scalar_one())


# --- who sees it ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "where", "full"),
    [
        ("zx.clerk", "case", True),  # registers, checks the citizen can be reached (第五条, 第九条)
        ("zx.reviewer", "case", True),  # 满意率回访 by telephone (第十八条)
        ("zx.admin", "case", False),  # manages staff: no need
        ("horqin.handler", "inbox", True),  # answers the citizen (第十八条)
        ("horqin.principal", "inbox", True),
        ("horqin.deputy", "inbox", True),
    ],
)
def test_contact_data_is_shown_in_full_only_to_the_roles_that_need_it(
    client, username: str, where: str, full: bool
) -> None:  # type: ignore[no-untyped-def]
    case_id, lead = _heating_ids()
    sign_in(client, username)
    page = client.get(f"/cases/{case_id}" if where == "case" else f"/inbox/{lead}")
    assert page.status_code == 200
    if full:
        assert PHONE in page.text and "王先生" in page.text
        assert "已隐去部分信息" not in page.text
    else:
        assert PHONE not in page.text and "王先生" not in page.text
        assert "138****1000" in page.text and "王**" in page.text and "已隐去部分信息" in page.text


@pytest.mark.parametrize("username", ["horqin.admin", "dc.supervisor", "city.leader", "sysadmin"])
def test_other_roles_never_see_the_full_contact_data(client, username: str) -> None:  # type: ignore[no-untyped-def]
    case_id, lead = _heating_ids()
    sign_in(client, username)
    for url in (
        f"/cases/{case_id}",
        f"/inbox/{lead}",
        f"/oversight/{case_id}",
        f"/cases/{case_id}/satisfaction",
    ):
        page = client.get(url, follow_redirects=False)
        assert PHONE not in page.text, (username, url, page.status_code)


def test_the_public_pages_and_search_never_show_contact_data(client) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        published = db.scalars(select(Case).where(Case.state == "published")).all()
        phones = [c.citizen_phone for c in published if c.citizen_phone]
        assert published and phones
    for case in published:
        page = client.get(f"/replies/{case.id}")
        assert page.status_code == 200
        assert all(p not in page.text for p in phones) and case.citizen_name not in page.text
    # The search page repeats the query (title, box): a citizen's number must appear there exactly
    # as often as a number no message contains — in no result, snippet or count.
    nobody = "19999999999"
    echoes = client.get("/search", params={"q": nobody}).text.count(nobody)
    for phone in phones:
        assert client.get("/search", params={"q": phone}).text.count(phone) == echoes
