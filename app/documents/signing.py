"""Digital signatures (PAdES) on published documents, and their verification by anyone.

The published reply is signed with a key of the issuing unit, so that any change to the file is
detectable; the public verifies a document by uploading it. The keys form a small PKI of our own:

    {root}/ca.pem            the root "民盼通办 文书签章根证书" (key + self-signed certificate)
    {root}/units/unit-N.pem  one signing key + certificate per unit (CN = the unit's full name)

``root`` defaults to MINPAN_PKI_DIR, else ``var_dir/pki``. Each file holds its key and its
certificate together, so one
atomic rename publishes both; the first process to publish a file wins a race and every other one
uses the winner's (files 0600, folders 0700). Keys are not encrypted at rest: the file
permissions and the machine are the protection. Every web process that signs or verifies must see
the same root, so on several machines the folder has to be shared (or copied from the first one).

Signatures are PAdES baseline B-B (no time stamp, no revocation data); verification trusts only
our root and fetches nothing from the network.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import EmbeddedPdfSignature, PdfSignatureStatus, async_validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from app.settings import get_settings

log = logging.getLogger("minpan.documents.signing")

ROOT_NAME = "民盼通办 文书签章根证书"
ORGANISATION = "通辽市"
SIGNATURE_FIELD = "Signature1"
ROOT_YEARS = 30
UNIT_YEARS = 20
RENEW_BEFORE = timedelta(days=365)  # a unit certificate this close to expiry is replaced

T = TypeVar("T")


@dataclass(frozen=True)
class Verification:
    """What the public sees after uploading a file. ``signer`` is the certificate's CN; it is
    only the issuing unit when ``trusted`` (anyone can make a certificate with any name)."""

    ok: bool
    signer: str
    signed_at: datetime | None
    intact: bool  # the file is byte for byte what was signed (nothing changed, nothing added)
    trusted: bool  # the certificate was issued by this platform's root
    reason_zh: str


@dataclass(frozen=True)
class KeyPair:
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @property
    def common_name(self) -> str:
        return _common_name(self.certificate)


# --- the key store --------------------------------------------------------------------------------


def pki_root(root: Path | None = None) -> Path:
    settings = get_settings()
    return (
        root if root is not None else Path(settings.pki_dir) if settings.pki_dir else settings.var_dir / "pki"
    )


def root_key(root: Path | None = None) -> KeyPair:
    """The platform's root CA, created on first use."""
    path = pki_root(root) / "ca.pem"
    existing = _read(path)
    if existing is not None:
        return existing
    _publish(path, _new_root(), replace=False)
    created = _read(path)
    assert created is not None
    return created


def root_certificate_pem(root: Path | None = None) -> bytes:
    """The root certificate alone, for anyone who wants to import it into a PDF reader."""
    return root_key(root).certificate.public_bytes(serialization.Encoding.PEM)


def unit_key(unit_id: int, unit_name: str, *, root: Path | None = None) -> KeyPair:
    """The signing key of a unit, issued by our root on first use and reused afterwards.

    A new one is issued when the unit's name changed, the certificate nears its end, or it was not
    issued by the current root; documents signed earlier carry their own certificate and stay
    verifiable.
    """
    ca = root_key(root)
    path = pki_root(root) / "units" / f"unit-{int(unit_id)}.pem"
    existing = _read(path)
    if existing is not None and _still_good(existing, unit_name, ca):
        return existing
    _publish(path, _new_unit(unit_name, ca), replace=existing is not None)
    current = _read(path)
    assert current is not None
    return current


def _still_good(pair: KeyPair, unit_name: str, ca: KeyPair) -> bool:
    cert = pair.certificate
    try:
        cert.verify_directly_issued_by(ca.certificate)
    except (InvalidSignature, ValueError, TypeError):  # issued by an earlier root
        return False
    return pair.common_name == unit_name and cert.not_valid_after_utc - RENEW_BEFORE > datetime.now(UTC)


def _new_root() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ROOT_NAME)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365 * ROOT_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _pem(key, cert)


def _new_unit(unit_name: str, ca: KeyPair) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, unit_name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(min(now + timedelta(days=365 * UNIT_YEARS), ca.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key()), critical=False
        )
        .sign(ca.private_key, hashes.SHA256())
    )
    return _pem(key, cert)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    # A CA signs certificates; a unit signs documents (digitalSignature + nonRepudiation).
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=not cert_sign,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _pem(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> bytes:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\r?\n?", re.DOTALL)


def _read(path: Path) -> KeyPair | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    blocks = {m.group(1): m.group(0) for m in _PEM_BLOCK.finditer(data)}
    key = serialization.load_pem_private_key(blocks[b"PRIVATE KEY"], password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: not an EC key")
    return KeyPair(x509.load_pem_x509_certificate(blocks[b"CERTIFICATE"]), key)


def _publish(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` to a temporary file beside ``path`` and move it into place atomically.

    Without ``replace`` the first writer wins (a hard link fails if the name exists), so two
    processes creating the same key at once end up using the same one.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            log.info("%s was created by another process; using that one", path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# --- signing --------------------------------------------------------------------------------------


def sign_pdf(
    pdf: bytes,
    *,
    unit_id: int,
    unit_name: str,
    reason: str = "回复意见",
    location: str = "通辽市",
    root: Path | None = None,
) -> bytes:
    """The PDF with an invisible PAdES signature of the unit appended as an incremental update.

    The visible seal is already part of the page content; this signature makes changes detectable.
    """
    ca = root_key(root)
    pair = unit_key(unit_id, unit_name, root=root)
    key_der = pair.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = signers.SimpleSigner(
        signing_cert=_asn1(pair.certificate),
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs([_asn1(ca.certificate)]),  # type: ignore[no-untyped-call]
    )
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location=location,
        name=unit_name,
    )
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    output = _run(signers.PdfSigner(meta, signer).async_sign_pdf(writer))
    return bytes(output.getvalue())


# --- verification ---------------------------------------------------------------------------------


def verify_pdf(pdf: bytes, *, root: Path | None = None) -> Verification:
    """Check an uploaded file: signed by one of our units, and unchanged since. Never raises."""
    try:
        reader = PdfFileReader(BytesIO(pdf))
        signatures = reader.embedded_regular_signatures
    except Exception:
        log.info("unreadable file offered for verification", exc_info=True)
        return _failed("无法读取文件：不是有效的PDF文件，或文件已损坏")
    if not signatures:
        return _failed("文件没有数字签章")
    try:
        status = _run(_validate(signatures[0], root))
    except Exception:
        log.info("signature could not be validated", exc_info=True)
        return _failed("签章无法校验：文件已被修改或损坏，签章无效")
    return _judge(status)


async def _validate(signature: EmbeddedPdfSignature, root: Path | None) -> PdfSignatureStatus:
    context = ValidationContext(
        trust_roots=[_asn1(root_key(root).certificate)],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    try:
        return await async_validate_pdf_signature(signature, signer_validation_context=context)
    finally:
        await context.aclose()  # type: ignore[no-untyped-call]


def _judge(status: PdfSignatureStatus) -> Verification:
    signer = _common_name_asn1(status.signing_cert)
    signed_at = status.signer_reported_dt
    untouched = status.intact and status.valid
    # Our documents carry one signature, made last: anything after the signed bytes (another
    # revision, another signature, even trailing bytes) is a change to the published file.
    covers_all = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    trusted = status.trusted
    if not untouched:
        reason = "文件已被修改，签章无效"
    elif not covers_all:
        reason = "文件在签章后被追加修改，签章无效"
    elif not trusted:
        reason = "签章证书不是本平台签发，无法确认签章单位"
    elif not status.bottom_line:
        reason = "签章校验未通过，签章无效"
    else:
        reason = f"签章有效：文件自签章以来未被修改，签章单位：{signer}"
    intact = untouched and covers_all
    return Verification(
        ok=intact and trusted and status.bottom_line,
        signer=signer,
        signed_at=signed_at,
        intact=intact,
        trusted=trusted,
        reason_zh=reason,
    )


def _failed(reason: str) -> Verification:
    return Verification(ok=False, signer="", signed_at=None, intact=False, trusted=False, reason_zh=reason)


# --- helpers --------------------------------------------------------------------------------------


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _common_name_asn1(cert: asn1_x509.Certificate | None) -> str:
    if cert is None:
        return ""
    return str(cert.subject.native.get("common_name", ""))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run pyHanko's coroutine to the end, also when called from inside a running event loop
    (an async handler): then in a thread of its own, since a loop cannot be nested."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
