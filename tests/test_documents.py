"""Official documents as real PDFs: the 承办单 form, the sealed GB/T 9704 回复意见, 退办单, 延办申请,
the 三单一函 and the 归档 case file — with the Chinese fonts embedded, the fields in the text, the
red seal on the page, and each document rendered once per content.

The story behind the documents is played through the real workflow (register → dispatch → receive
→ drafts → 批示 → 提醒/催办/督办 → 移交; a same-day return; an extension approved level by level).
Page 1 of every document is written as a PNG to ``test-output/documents/`` for a human to look at.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.accounts.identity import CurrentUser
from app.accounts.models import User
from app.cases.models import Assignment, Case
from app.db import session_factory, system_session
from app.demo import demo_signature_png
from app.documents import render, services, sources
from app.documents.models import Document
from app.documents.seal import seal_svg
from app.errors import InvalidInput
from app.escalation.models import Escalation
from app.tenants.models import Workspace
from app.tenants.scope import TenantContext, bind_tenant
from app.workflows.engine import apply
from tests.conftest import IS_POSTGRES, OUTPUT

ARTEFACTS = OUTPUT / "documents"
POPPLER = all(shutil.which(tool) for tool in ("pdffonts", "pdftotext", "pdftoppm"))
needs_poppler = pytest.mark.skipif(
    not POPPLER, reason="poppler-utils (pdffonts, pdftotext, pdftoppm) not installed"
)


# --- the seal -------------------------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def _svg(name: str, **kw: Any) -> ET.Element:
    return ET.fromstring(seal_svg(name, **kw))  # noqa: S314  (our own generated SVG)


def test_the_seal_places_each_character_of_the_name_as_its_own_text_around_a_star() -> None:
    for name in (
        "民盼通办",
        "通辽市教育局",
        "通辽市政府门户网站运维中心",
        "通辽经济技术开发区管理委员会",
        "一" * 20,
    ):
        root = _svg(name)
        texts = [t.text for t in root.iter(f"{SVG}text")]
        assert texts == list(name)  # one rotated <text> per character, no <textPath>
        assert not list(root.iter(f"{SVG}textPath"))
        assert all("rotate(" in t.get("transform", "") for t in root.iter(f"{SVG}text"))
        stars = [p for p in root.iter(f"{SVG}polygon") if p.get("class") == "star"]
        assert len(stars) == 1 and len(stars[0].get("points", "").split()) == 10  # five points, five notches
        assert root.get("width") == "42mm"
    labelled = _svg("科尔沁区人民政府", label="公章", size_mm=40)
    assert [t.text for t in labelled.iter(f"{SVG}text")] == [*"科尔沁区人民政府", "公章"]
    assert labelled.get("width") == "40mm"


def test_the_seal_is_stamped_unevenly_but_the_same_each_time() -> None:
    svg = seal_svg("通辽市政府门户网站运维中心")
    assert svg is seal_svg("通辽市政府门户网站运维中心")  # cached
    root = _svg("通辽市政府门户网站运维中心")
    shades = {t.get("fill-opacity") for t in root.iter(f"{SVG}text")}
    assert len(shades) > 3  # ink is not even on paper
    assert 'opacity="' not in svg.replace("-opacity", "")  # plain opacity: WeasyPrint clips rotated text
    for bad in ("市政府", "一" * 21):
        with pytest.raises(ValueError):
            seal_svg(bad)


def test_dates_under_a_signature_are_written_in_chinese_numerals() -> None:
    assert render.cn_date(date(2026, 12, 4)) == "二〇二六年十二月四日"
    assert render.cn_date(date(2026, 11, 27)) == "二〇二六年十一月二十七日"
    assert render.cn_date(date(2030, 10, 10)) == "二〇三〇年十月十日"
    assert render.cn_date(date(2026, 1, 31)) == "二〇二六年一月三十一日"
    assert render.ymd(date(2026, 12, 4)) == "2026年12月4日"


# --- the story -------------------------------------------------------------------------------------------


def _person(db: Any, username: str, slug: str) -> CurrentUser:
    from app.accounts.services import posts_of

    user = db.scalar(select(User).where(User.username == username))
    posts = posts_of(db, user.id)
    post = next(p for p in posts if p.slug == slug)
    return CurrentUser(user.id, user.username, user.display_name, "test", False, posts, post, "127.0.0.1")


def _case(db: Any, source_id: str) -> Case:
    case = db.scalar(select(Case).where(Case.source_id == source_id))
    assert case is not None
    return case


def _lead(db: Any, case: Case) -> Assignment:
    lead = db.scalar(select(Assignment).where(Assignment.case_id == case.id, Assignment.is_lead.is_(True)))
    assert lead is not None
    return lead


def play_story() -> dict[str, Any]:
    """Through the real workflow: a heating complaint handled slowly (a long timeline, a 批示, the
    whole ladder up to 移交), a same-day return, an extension; the demo's signed reply. Returns ids."""
    from app.cases.oversight import add_instruction
    from app.escalation.services import sweep, transfer

    with system_session() as db:
        heating = _case(db, "TL-2026-110301")
        lead = _lead(db, heating)
        handler = _person(db, "horqin.handler", "horqin")
        apply(db, handler, lead, "receive")
        for n in range(1, 25):
            apply(
                db,
                handler,
                lead,
                "save_draft",
                reply_text=f"经核查，明仁小区3号楼供暖管网存在堵塞，正在协调热力公司处理（第{n}稿）。",
            )
        add_instruction(
            db,
            _person(db, "city.leader", "city-office"),
            heating.id,
            "请科尔沁区政府高度重视，尽快解决群众供暖问题，按时答复。",
        )
        for a in db.scalars(select(Assignment).where(Assignment.is_lead.is_(True))):
            a.due_date = date(2026, 12, 4) if a.id == lead.id else date(2027, 3, 1)  # test set-up
        road_lead = _lead(db, _case(db, "TL-2026-110302"))
        apply(db, _person(db, "naiman.handler", "naiman"), road_lead, "receive")
        apply(
            db,
            _person(db, "naiman.handler", "naiman"),
            road_lead,
            "draft_return",
            reason="该路段为国道，养护管理属交通运输部门职责，不属于本单位职责范围。",
        )
        apply(
            db,
            _person(db, "naiman.deputy", "naiman"),
            road_lead,
            "sign_return",
            signature=demo_signature_png(),
        )
        apply(
            db,
            _person(db, "zx.clerk", "portal-centre"),
            _case(db, "TL-2026-110302"),
            "accept_return",
            assignment_id=road_lead.id,
        )
        invoice = _case(db, "TL-2026-110307")
        invoice_lead = _lead(db, invoice)
        tax_handler = _person(db, "tax.handler", "tax")
        apply(db, tax_handler, invoice_lead, "receive")
        invoice_lead.due_date = date(2026, 12, 2)  # test set-up: before the sweeps' days, answered in time
        apply(
            db,
            tax_handler,
            invoice_lead,
            "request_extension",
            days=2,
            reason="需协调省税务局开通数电发票试点权限，并电话回访网民。",
        )
        apply(db, _person(db, "tax.deputy", "tax"), invoice_lead, "endorse_extension")
        apply(
            db,
            _person(db, "zx.clerk", "portal-centre"),
            invoice,
            "approve_extension",
            assignment_id=invoice_lead.id,
            days=2,
        )
        invoice_lead.state = "submitted"  # test set-up: keep it out of the sweeps below
        ids = {
            "heating": heating.id,
            "lead": lead.id,
            "road_lead": road_lead.id,
            "invoice_lead": invoice_lead.id,
        }
        fees = _case(db, "TL-2026-110306")
        ids["fees_lead"] = _lead(db, fees).id
        ids["supervisor"] = _person(db, "dc.supervisor", "city-office").user_id
    for day in (date(2026, 12, 3), date(2026, 12, 7), date(2026, 12, 9)):  # 提醒, 催办, 催办 (2nd) + 督办
        sweep(day, fan_out_now=True)
    with system_session() as db:
        transfer(
            db,
            case_id=ids["heating"],
            assignment_id=ids["lead"],
            reason="三次催办、一次督办均无结果，供暖问题持续两周，群众反映强烈，造成不良社会影响。",
            actor_id=ids["supervisor"],
            today=date(2026, 12, 10),
        )
    return ids


@dataclass
class Issued:
    source: sources.Source
    document: Document
    pdf: bytes
    path: Path
    png: Path


def _save(name: str, source: sources.Source, document: Document, pdf: bytes) -> Issued:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.pdf"
    path.write_bytes(pdf)
    png = ARTEFACTS / f"{name}.png"
    if POPPLER:
        subprocess.run(
            [
                "pdftoppm",
                "-r",
                "60",
                "-png",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                str(path),
                str(png.with_suffix("")),
            ],
            check=True,
        )
    return Issued(source, document, pdf, path, png)


@pytest.fixture(scope="module")
def issued() -> dict[str, Issued]:
    """Every kind of document, issued once from the story (module-wide: rendering is the slow part)."""
    from tests.conftest import reset_data

    reset_data()
    ids = play_story()
    out: dict[str, Issued] = {}
    with system_session() as db:
        wanted: list[tuple[str, str, Any]] = [
            ("assignment_sheet", "assignment_sheet", db.get(Assignment, ids["lead"])),
            ("reply_letter", "reply_letter", db.get(Assignment, ids["fees_lead"])),
            ("return_sheet", "return_sheet", db.get(Assignment, ids["road_lead"])),
            ("extension_request", "extension_request", db.get(Assignment, ids["invoice_lead"])),
            ("case_file", "case_file", db.get(Case, ids["heating"])),
        ]
        for e in db.scalars(
            select(Escalation).where(Escalation.case_id == ids["heating"]).order_by(Escalation.id)
        ):
            wanted.append((f"escalation_{e.rung}_{e.ordinal}", "escalation_notice", e))
        for name, kind, obj in wanted:
            source = sources.build(db, kind, obj)
            document = services.issue(db, kind, source)
            out[name] = _save(name, source, document, services.pdf_bytes(document))
    return out


SINGLE_PAGE = ("assignment_sheet", "reply_letter", "return_sheet", "extension_request")
NOTICES = (
    "escalation_reminder_1",
    "escalation_urge_1",
    "escalation_urge_2",
    "escalation_supervise_1",
    "escalation_transfer_1",
)


def test_the_story_yields_every_kind_of_document(issued: dict[str, Issued]) -> None:
    assert set(issued) == {*SINGLE_PAGE, *NOTICES, "case_file"}
    assert {i.document.kind for i in issued.values()} == set(sources.KINDS)


@pytest.mark.parametrize("name", [*SINGLE_PAGE, *NOTICES])
def test_sheets_letters_and_notices_fit_on_one_page(issued: dict[str, Issued], name: str) -> None:
    assert issued[name].document.pages == 1
    assert issued[name].pdf.startswith(b"%PDF-")


def test_a_case_file_with_a_long_timeline_runs_over_several_pages(issued: dict[str, Issued]) -> None:
    file = issued["case_file"]
    assert isinstance(file.source, sources.CaseFile) and len(file.source.timeline) > 30
    assert file.document.pages >= 3  # a cover, the file, the timeline continued
    if POPPLER:
        last = _text(file.path, page=file.document.pages)
        assert "办理过程" not in last and "移交函" in last  # the timeline table runs on …
        assert "办理人" in last  # … with its header repeated on the new page
        assert f"—{file.document.pages}—" in _flat(last)


@needs_poppler
@pytest.mark.parametrize("name", [*SINGLE_PAGE, *NOTICES, "case_file"])
def test_the_chinese_font_is_embedded(issued: dict[str, Issued], name: str) -> None:
    """pdftotext prints Chinese even when every glyph is an empty box: pdffonts proves the font."""
    listing = subprocess.run(
        ["pdffonts", str(issued[name].path)], capture_output=True, text=True, check=True
    ).stdout
    cjk = [line for line in listing.splitlines() if "CJK" in line and "Noto" in line]
    assert cjk, listing
    assert all(line.split()[-5] == "yes" for line in cjk), listing  # emb column


def _text(path: Path, page: int | None = None) -> str:
    args = ["pdftotext", "-layout"]
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    return subprocess.run([*args, str(path), "-"], capture_output=True, text=True, check=True).stdout


def _flat(text: str) -> str:
    return "".join(text.split())


@needs_poppler
def test_the_assignment_sheet_carries_the_message_the_units_and_the_due_date(
    issued: dict[str, Issued],
) -> None:
    sheet = issued["assignment_sheet"]
    src = sheet.source
    assert isinstance(src, sources.AssignmentSheet)
    text = _flat(_text(sheet.path))
    for expected in (
        "人民网地方领导留言板咨询事项承办单",
        f"编号：{src.number}",
        "明仁小区供暖温度不达标",
        "明仁小区3号楼室温一直只有15度左右",
        "TL-2026-110301",
        "王先生",
        "牵头单位科尔沁区人民政府",
        "协办单位通辽市住房和城乡建设局",
        f"请于{render.ymd(src.due_date)}前",
        "请尽快核实供暖情况并答复网民。",
        "请科尔沁区政府高度重视",  # 领导批示
        "通辽市政府门户网站运维中心",
    ):
        assert _flat(expected) in text, expected
    assert src.number.startswith("通留〔2026〕")


@needs_poppler
def test_the_reply_letter_is_addressed_signed_and_dated_in_chinese(issued: dict[str, Issued]) -> None:
    letter = issued["reply_letter"]
    src = letter.source
    assert isinstance(src, sources.ReplyLetter) and src.signature.startswith("data:image/png;base64,")
    text = _flat(_text(letter.path))
    for expected in (
        "通辽市教育局",
        "市区学校课后服务收费标准",
        "通辽市政府门户网站运维中心：",
        src.sheet_number,
        "每生每学期不超过300元",
        "主要负责人（签字）",
        render.cn_date(src.signed_at),
        f"联系人：{src.handler_name}",
    ):
        assert _flat(expected) in text, expected
    assert "〇" in render.cn_date(src.signed_at)


@needs_poppler
def test_the_return_and_extension_forms_carry_reason_signature_and_decision(
    issued: dict[str, Issued],
) -> None:
    back = _flat(_text(issued["return_sheet"].path))
    for expected in (
        "退办单",
        "奈曼旗人民政府",
        "养护管理属交通运输部门职责",
        "分管领导",
        "同意牵头单位退办，重新派单",
    ):
        assert expected in back, expected
    src = issued["extension_request"].source
    assert isinstance(src, sources.ExtensionRequest) and src.outcome == "approved" and src.days == 2
    ext = _flat(_text(issued["extension_request"].path))
    for expected in (
        "延期办结申请表",
        "国家税务总局通辽市税务局",
        "2个工作日",
        "需协调省税务局",
        "单位领导同意延期申请",
        "同意延期",
        "第十四条",
    ):
        assert expected in ext, expected


@needs_poppler
def test_each_rung_of_the_ladder_has_its_title_number_article_and_issuer(issued: dict[str, Issued]) -> None:
    expected = {
        "escalation_reminder_1": ("提醒单", "提醒〔2026〕", "第十三条", "通辽市政府门户网站运维中心"),
        "escalation_urge_1": ("催办单", "催办〔2026〕", "第十九条", "通辽市政府门户网站运维中心"),
        "escalation_urge_2": ("催办单", "（第2次）", "第十九条", "通辽市政府门户网站运维中心"),
        "escalation_supervise_1": ("督办单", "督办〔2026〕", "第十九条", "通辽市政府门户网站运维中心"),
        "escalation_transfer_1": ("移交函", "移交〔2026〕1号", "第二十条", "通辽市人民政府办公室"),
    }
    for name, words in expected.items():
        text = _flat(_text(issued[name].path))
        notice = issued[name].source
        assert isinstance(notice, sources.EscalationNotice)
        for word in (
            *words,
            notice.number,
            notice.sheet_number,
            "明仁小区供暖温度不达标",
            render.ymd(notice.due_date),
        ):
            assert word in text, (name, word)
        if notice.rung != "transfer":
            assert "科尔沁区人民政府主要负责同志：" in text
    transfer = _flat(_text(issued["escalation_transfer_1"].path))
    assert (
        "通辽市纪委监委：" in transfer and "抄送：市政府督查室" in transfer and "供暖问题持续两周" in transfer
    )


@needs_poppler
def test_the_case_file_holds_the_message_replies_notices_instructions_and_timeline(
    issued: dict[str, Issued],
) -> None:
    text = _flat(_text(issued["case_file"].path))
    for expected in (
        "网民留言办理档案",
        "明仁小区供暖温度不达标",
        "交办情况",
        "通辽市住房和城乡建设局",
        "请科尔沁区政府高度重视",
        "提醒单",
        "督办单",
        "移交函",
        "办理过程",
        "（第24稿）",
        "起草回复意见",
    ):
        assert expected in text, expected


def _red_pixels(png: Path) -> int:
    from PIL import Image

    with Image.open(png) as img:
        pixels = img.convert("RGB").get_flattened_data()
        return sum(1 for r, g, b in pixels if r > 170 and g < 90 and b < 100)


@needs_poppler
@pytest.mark.parametrize("name", [*SINGLE_PAGE, *NOTICES, "case_file"])
def test_page_one_is_written_as_a_picture_with_the_red_seal_where_there_is_one(
    issued: dict[str, Issued], name: str
) -> None:
    png = issued[name].png
    assert png.exists() and png.stat().st_size > 5_000
    red = _red_pixels(png)
    if name in ("return_sheet", "extension_request", "case_file"):  # signed, not sealed; the file's cover
        assert red < 50, red
    else:
        assert red > 1_000, red  # the seal (and the red masthead)


def test_threads_render_one_at_a_time_and_the_same_data_gives_the_same_bytes(
    issued: dict[str, Issued], capfd: pytest.CaptureFixture[str]
) -> None:
    """Pango is not thread-safe: web and worker threads must not render at the same moment."""
    source = issued["escalation_urge_1"].source
    results: list[bytes] = []

    def work() -> None:
        results.append(render.render_document(source.template, doc=source).pdf)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "Pango-CRITICAL" not in capfd.readouterr().err
    assert len(results) == 4 and set(results) == {issued["escalation_urge_1"].pdf}


# --- issuing: once per content, checked on the way out -------------------------------------------------


@pytest.fixture()
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the renders (services.issue calls render.render_document once per new document)."""
    calls: list[str] = []
    real = render.render_document

    def counting(template: str, **context: Any) -> render.Rendered:
        calls.append(template)
        return real(template, **context)

    monkeypatch.setattr(render, "render_document", counting)
    return calls


def _sheet(db: Any) -> tuple[Assignment, sources.AssignmentSheet]:
    lead = _lead(db, _case(db, "TL-2026-110301"))
    source = sources.assignment_sheet(db, lead)
    return lead, source


def test_the_same_document_is_not_rendered_twice_for_the_same_content(demo: None, renders: list[str]) -> None:
    with system_session() as db:
        lead, source = _sheet(db)
        first = services.issue(db, "assignment_sheet", source)
    with system_session() as db:
        again = services.issue(
            db, "assignment_sheet", sources.assignment_sheet(db, db.get(Assignment, lead.id))
        )
        assert again.id == first.id and len(renders) == 1
        assert db.scalar(select(func.count()).select_from(Document)) == 1
        assert services.find(db, sources.assignment_sheet(db, db.get(Assignment, lead.id))) is not None
    with system_session() as db:  # new content: a 批示 was written since
        from app.cases.oversight import add_instruction

        add_instruction(db, _person(db, "city.leader", "city-office"), lead.case_id, "请尽快办理。")
        changed = services.issue_for(db, "assignment_sheet", db.get(Assignment, lead.id))
        assert changed.id != first.id and len(renders) == 2
        assert changed.sha256 != first.sha256 and changed.content_hash != first.content_hash
        assert changed.number == first.number == lead.sheet_number
        assert (changed.workspace_id, changed.case_id, changed.assignment_id) == (
            lead.workspace_id,
            lead.case_id,
            lead.id,
        )


def test_the_content_hash_covers_the_data_and_the_template_version(demo: None) -> None:
    import dataclasses

    with system_session() as db:
        _, source = _sheet(db)
    same = dataclasses.replace(source)
    assert services.content_hash(source) == services.content_hash(same)
    other = dataclasses.replace(source, instructions="另行处理")
    assert services.content_hash(source) != services.content_hash(other)
    version = render.template_version(source.template)
    assert len(version) == 16 and version != render.template_version("documents/reply_letter.html")


def test_a_stored_pdf_is_checked_against_its_sha256_when_read(demo: None) -> None:
    import hashlib

    with system_session() as db:
        _, source = _sheet(db)
        document = services.issue(db, "assignment_sheet", source)
        pdf = services.pdf_bytes(document)
        assert hashlib.sha256(pdf).hexdigest() == document.sha256 and len(pdf) == document.size
        document_id = document.id
    with system_session() as db:
        loaded = services.get(db, document_id, with_pdf=True)
        assert loaded is not None and services.pdf_bytes(loaded) == pdf
        loaded.pdf = pdf[:-10] + b"0000000000"  # the storage went bad
        with pytest.raises(services.DocumentCorrupted):
            services.pdf_bytes(loaded)
        db.rollback()


def test_an_unsigned_reply_is_no_document(demo: None) -> None:
    with system_session() as db:
        lead = _lead(db, _case(db, "TL-2026-110301"))
        with pytest.raises(InvalidInput, match="主要负责人审签"):
            sources.reply_letter(db, lead)
        with pytest.raises(InvalidInput):
            services.issue(db, "reply_letter", sources.assignment_sheet(db, lead))  # kind and source disagree


def test_a_document_belongs_to_its_workspace_and_is_invisible_to_others(demo: None) -> None:
    with system_session() as db:
        lead, source = _sheet(db)
        document = services.issue(db, "assignment_sheet", source)
        document_id, unit_id = document.id, lead.workspace_id
        other_id = db.scalar(select(Workspace.id).where(Workspace.slug == "kailu"))
    for workspace_id, visible in ((unit_id, True), (other_id, False)):
        db = session_factory()()
        bind_tenant(db, TenantContext.for_workspace(workspace_id, None))
        try:
            assert (services.get(db, document_id) is not None) is visible
            assert bool(services.of_case(db, lead.case_id)) is visible
        finally:
            db.close()


@pytest.mark.skipif(
    not IS_POSTGRES, reason="two writers at once need PostgreSQL (SQLite takes one writer at a time)"
)
def test_two_processes_issuing_the_same_content_at_once_keep_one_document(demo: None) -> None:
    with system_session() as db:
        lead, _ = _sheet(db)
    barrier = threading.Barrier(2)
    got: list[int] = []

    def issue() -> None:
        with system_session() as db:
            source = sources.assignment_sheet(db, db.get(Assignment, lead.id))
            barrier.wait()
            got.append(services.issue(db, "assignment_sheet", source).id)

    threads = [threading.Thread(target=issue) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with system_session() as db:
        assert db.scalar(select(func.count()).select_from(Document)) == 1
    assert len(got) == 2 and got[0] == got[1]
