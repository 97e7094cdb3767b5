"""Digital signatures on published documents: anyone can tell a genuine, unchanged reply from a
changed or forged one (app/documents/signing.py)."""

from __future__ import annotations

import asyncio
import re
import stat
import threading
import time
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from app.documents.signing import ROOT_NAME, root_key, sign_pdf, unit_key, verify_pdf

HORQIN = "科尔沁区人民政府"
KAILU = "开鲁县人民政府"


@pytest.fixture(scope="module")
def reply_pdf() -> bytes:
    import weasyprint

    html = "<h1>回复意见</h1><p>通辽市科尔沁区明仁小区供暖问题已协调解决。</p>"
    return weasyprint.HTML(string=html).write_pdf()


@pytest.fixture()
def pki(tmp_path: Path) -> Path:
    return tmp_path / "pki"


@pytest.fixture()
def signed(reply_pdf: bytes, pki: Path) -> bytes:
    return sign_pdf(reply_pdf, unit_id=7, unit_name=HORQIN, root=pki)


def _signed_ranges(pdf: bytes) -> list[range]:
    found = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert found is not None
    a, b, c, d = (int(x) for x in found.groups())
    return [range(a, a + b), range(c, c + d)]


def _flip(pdf: bytes, at: int) -> bytes:
    return pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1 :]


def test_a_signed_weasyprint_reply_verifies_with_the_unit_name(reply_pdf: bytes, pki: Path) -> None:
    started = time.perf_counter()
    signed = sign_pdf(reply_pdf, unit_id=7, unit_name=HORQIN, root=pki)
    first_sign = time.perf_counter() - started  # includes creating the root and the unit key
    started = time.perf_counter()
    for _ in range(10):
        signed = sign_pdf(reply_pdf, unit_id=7, unit_name=HORQIN, root=pki)
    sign_ms = (time.perf_counter() - started) * 100
    started = time.perf_counter()
    for _ in range(10):
        result = verify_pdf(signed, root=pki)
    verify_ms = (time.perf_counter() - started) * 100
    print(
        f"\n1-page PDF ({len(reply_pdf)} bytes): first sign with key creation {first_sign * 1000:.0f} ms, "
        f"sign {sign_ms:.1f} ms, verify {verify_ms:.1f} ms"
    )
    assert result.ok and result.intact and result.trusted
    assert result.signer == HORQIN
    assert result.reason_zh == f"签章有效：文件自签章以来未被修改，签章单位：{HORQIN}"
    assert result.signed_at is not None
    assert abs(result.signed_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert signed.startswith(reply_pdf)  # an incremental update: the rendered document is untouched


def test_one_byte_changed_inside_the_signed_range_breaks_the_signature(signed: bytes, pki: Path) -> None:
    ranges = _signed_ranges(signed)
    text_at = signed.index(b"WeasyPrint")  # the producer, in the document information
    stream_at = signed.index(b"stream\n") + 200  # inside the first (compressed) content stream
    for at in (text_at, stream_at):
        assert any(at in r for r in ranges)
        result = verify_pdf(_flip(signed, at), root=pki)
        assert not result.ok
        assert not result.intact
        assert result.reason_zh == "文件已被修改，签章无效"


def test_bytes_appended_after_the_end_of_file_count_as_a_change(signed: bytes, pki: Path) -> None:
    # pyHanko reports these as coverage ENTIRE_REVISION with no semantic modification; a published
    # document is served byte for byte, so anything after the signed bytes is a change to it.
    for tail in (b"\n", b"%% appended\n"):
        result = verify_pdf(signed + tail, root=pki)
        assert not result.ok
        assert not result.intact
        assert result.trusted
        assert "追加" in result.reason_zh


def test_content_added_in_an_incremental_update_after_signing_is_not_accepted(
    signed: bytes, pki: Path
) -> None:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(BytesIO(signed))
    stamp = generic.StreamObject(stream_data=b"0 0 1 rg 50 50 200 100 re f")
    writer.add_stream_to_page(0, writer.add_object(stamp))
    out = BytesIO()
    writer.write(out)
    changed = out.getvalue()
    assert changed.startswith(signed)  # the signed bytes themselves are untouched
    result = verify_pdf(changed, root=pki)
    assert not result.ok
    assert not result.intact
    assert result.reason_zh == "文件在签章后被追加修改，签章无效"


def test_a_second_signature_added_later_is_a_change(signed: bytes, pki: Path, tmp_path: Path) -> None:
    from asn1crypto import keys
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    other = unit_key(1, "别处", root=tmp_path / "elsewhere")
    der = other.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(other.certificate.public_bytes(serialization.Encoding.DER)),
        signing_key=keys.PrivateKeyInfo.load(der),
        cert_registry=SimpleCertificateStore(),
    )
    meta = signers.PdfSignatureMetadata(field_name="Signature2", subfilter=fields.SigSeedSubFilter.PADES)
    resigned = signers.PdfSigner(meta, signer).sign_pdf(IncrementalPdfFileWriter(BytesIO(signed))).getvalue()
    result = verify_pdf(resigned, root=pki)
    assert not result.ok and not result.intact
    assert result.signer == HORQIN  # the first signature is the one that counts


def test_a_certificate_not_issued_by_our_root_is_not_trusted(
    reply_pdf: bytes, pki: Path, tmp_path: Path
) -> None:
    root_key(pki)  # our platform exists
    forged = sign_pdf(reply_pdf, unit_id=7, unit_name=HORQIN, root=tmp_path / "forger")
    result = verify_pdf(forged, root=pki)
    assert not result.ok
    assert not result.trusted
    assert result.intact  # cryptographically fine, just not ours
    assert result.reason_zh == "签章证书不是本平台签发，无法确认签章单位"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "无法读取文件：不是有效的PDF文件，或文件已损坏"),
        (b"this is not a pdf at all" * 50, "无法读取文件：不是有效的PDF文件，或文件已损坏"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 8, "无法读取文件：不是有效的PDF文件，或文件已损坏"),
    ],
)
def test_garbage_is_refused_with_a_reason_and_never_raises(data: bytes, reason: str, pki: Path) -> None:
    result = verify_pdf(data, root=pki)
    assert not result.ok
    assert result.reason_zh == reason


def test_a_truncated_signed_file_is_refused(signed: bytes, pki: Path) -> None:
    for cut in (len(signed) // 2, len(signed) - 40, 100):
        result = verify_pdf(signed[:cut], root=pki)
        assert not result.ok
        assert not result.intact
        assert result.reason_zh


def test_an_unsigned_pdf_has_no_signature(reply_pdf: bytes, pki: Path) -> None:
    result = verify_pdf(reply_pdf, root=pki)
    assert not result.ok
    assert result.reason_zh == "文件没有数字签章"


def test_each_unit_has_its_own_certificate_issued_by_the_root(pki: Path) -> None:
    horqin = unit_key(7, HORQIN, root=pki)
    kailu = unit_key(8, KAILU, root=pki)
    assert horqin.certificate.serial_number != kailu.certificate.serial_number
    assert horqin.certificate.public_key() != kailu.certificate.public_key()
    ca = root_key(pki).certificate
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ROOT_NAME
    assert ca.issuer == ca.subject
    for pair, name in ((horqin, HORQIN), (kailu, KAILU)):
        cert = pair.certificate
        cert.verify_directly_issued_by(ca)
        subject = {a.oid: a.value for a in cert.subject}
        assert subject == {
            NameOID.COMMON_NAME: name,
            NameOID.ORGANIZATION_NAME: "通辽市",
            NameOID.COUNTRY_NAME: "CN",
        }
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign


def test_keys_persist_across_calls_in_private_files(reply_pdf: bytes, pki: Path) -> None:
    first = unit_key(7, HORQIN, root=pki)
    again = unit_key(7, HORQIN, root=pki)
    assert again.certificate == first.certificate
    sign_pdf(reply_pdf, unit_id=7, unit_name=HORQIN, root=pki)
    assert unit_key(7, HORQIN, root=pki).certificate == first.certificate
    files = sorted(p for p in pki.rglob("*") if p.is_file())
    assert [p.relative_to(pki).as_posix() for p in files] == ["ca.pem", "units/unit-7.pem"]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((pki / "units").stat().st_mode) == 0o700


def test_a_renamed_unit_gets_a_new_certificate_and_old_documents_still_verify(
    reply_pdf: bytes, pki: Path
) -> None:
    old = sign_pdf(reply_pdf, unit_id=7, unit_name="科尔沁区政府", root=pki)
    renamed = unit_key(7, HORQIN, root=pki)
    assert renamed.common_name == HORQIN
    assert verify_pdf(old, root=pki).signer == "科尔沁区政府"
    assert verify_pdf(old, root=pki).ok


def test_concurrent_first_use_creates_one_key(pki: Path) -> None:
    results: list[x509.Certificate] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        results.append(unit_key(9, KAILU, root=pki).certificate)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert len({c.serial_number for c in results}) == 1
    assert unit_key(9, KAILU, root=pki).certificate == results[0]
    assert not [p for p in pki.rglob("*.tmp")]


def test_signing_and_verifying_work_inside_an_async_handler(reply_pdf: bytes, pki: Path) -> None:
    async def handler() -> bool:
        signed = sign_pdf(reply_pdf, unit_id=7, unit_name=HORQIN, root=pki)
        return verify_pdf(signed, root=pki).ok

    assert asyncio.run(handler())
