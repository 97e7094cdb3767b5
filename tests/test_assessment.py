"""第二十一条: the yearly assessment (反向扣分) explains itself case by case, and the centre's
bulletins (通报) are made once a month and issued by the centre."""

from __future__ import annotations

import io
import subprocess
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select

from app.assessment import bulletins, services
from app.assessment.models import Bulletin
from app.assessment.rules import Points
from app.audit.models import AuditEvent
from app.cases.models import Assignment, Case, TimelineEntry
from app.db import system_session, utcnow
from app.escalation.models import Escalation
from app.public.models import Rating
from app.tenants.models import Workspace
from tests.conftest import OUTPUT
from tests.helpers import post, sign_in

CST = timezone(timedelta(hours=8))  # Tongliao
YEAR = 2025  # the demo's own cases are of 2026: this year holds only what a test builds
AFTER = date(2026, 1, 5)  # the year is over
# The rules of 2025 (the centre admin's, in points); the expected figures below use these.
RULES = {
    "base": "100",
    "overdue": "2",
    "urge_ignored": "0.5",
    "supervise": "3",
    "transfer": "5",
    "quality": "1.5",
    "invalid_return": "1",
    "unsatisfied": "0.5",
}


def _ws(db: Any, slug: str) -> int:
    found = db.scalar(select(Workspace.id).where(Workspace.slug == slug))
    assert found
    return int(found)


class Builder:
    """Cases and the unit's assignments inserted as rows, the way the workflow leaves them."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.centre = _ws(db, "portal-centre")
        self.n = 0

    def assignment(self, unit: int, due: date, *, signed: datetime | None = None, **kw: Any) -> Assignment:
        self.n += 1
        sheet = f"通留〔{YEAR}〕9{self.n:03d}号"
        posted = datetime(YEAR, 1, 2, tzinfo=UTC)
        case = Case(
            workspace_id=self.centre,
            board="mayor",
            source_id=f"assess-{self.n}",
            title=f"考核测试留言{self.n}",
            body="正文",
            posted_at=posted,
            category="complain",
            sheet_number=sheet,
            state="assigned",
            reply_unit_id=unit,
        )
        self.db.add(case)
        self.db.flush()
        values = {"is_lead": True, "state": "submitted" if signed else "handling"} | kw
        a = Assignment(
            workspace_id=unit,
            case_id=case.id,
            sheet_number=sheet,
            title=case.title,
            body="正文",
            category="complain",
            posted_at=posted,
            dispatched_at=datetime.combine(due, datetime.min.time(), CST) - timedelta(days=7),
            due_date=due,
            signed_at=signed,
            **values,
        )
        self.db.add(a)
        self.db.flush()
        return a

    def rung(self, a: Assignment, rung: str, day: date, ordinal: int = 1) -> None:
        self.db.add(
            Escalation(
                workspace_id=a.workspace_id,
                key=f"t:{a.id}:{rung}:{ordinal}",
                assignment_id=a.id,
                case_id=a.case_id,
                rung=rung,
                ordinal=ordinal,
                number=f"{rung}〔{YEAR}〕{a.id}{ordinal}号",
                due_date=a.due_date,
                issued_on=day,
            )
        )

    def step(self, a: Assignment, action: str, at: datetime) -> None:
        self.db.add(
            TimelineEntry(
                workspace_id=a.workspace_id, case_id=a.case_id, assignment_id=a.id, action=action, at=at
            )
        )

    def rating(self, a: Assignment, score: str, at: datetime) -> None:
        self.db.add(
            Rating(workspace_id=self.centre, case_id=a.case_id, score=score, source="phone", created_at=at)
        )


@pytest.fixture()
def year_2025(demo: None) -> dict[str, Any]:
    """科尔沁区's 2025, with each kind of failing, its near misses, and its expected deductions."""
    with system_session() as db:
        b = Builder(db)
        horqin, kailu = _ws(db, "horqin"), _ws(db, "kailu")
        services.set_points(db, YEAR, Points.parse(RULES), actor_id=None, workspace_id=None)  # type: ignore[arg-type]
        # 逾期: signed at 23:00 on the due date is on time; 00:30 the next morning (16:30 UTC on the
        # due date itself) is late; still unsigned after the due date is late.
        on_time = b.assignment(horqin, date(YEAR, 3, 10), signed=datetime(YEAR, 3, 10, 23, 0, tzinfo=CST))
        late = b.assignment(horqin, date(YEAR, 3, 10), signed=datetime(YEAR, 3, 11, 0, 30, tzinfo=CST))
        owed = b.assignment(horqin, date(YEAR, 4, 1))
        b.assignment(horqin, date(YEAR, 4, 1), is_lead=False)  # a co-unit owes no reply of its own
        b.assignment(horqin, date(YEAR, 4, 1), state="returned")  # a return the centre accepted
        b.assignment(horqin, date(YEAR - 1, 12, 30), signed=datetime(YEAR, 1, 6, tzinfo=CST))  # 2024's
        b.assignment(kailu, date(YEAR, 4, 1), signed=datetime(YEAR, 3, 30, tzinfo=CST))
        # 催办 → 催办 → 督办 on the owed one: both 催办 went without result; then a 移交函.
        b.rung(owed, "reminder", date(YEAR, 3, 31))
        b.rung(owed, "urge", date(YEAR, 4, 2), 1)
        b.rung(owed, "urge", date(YEAR, 4, 7), 2)
        b.rung(owed, "supervise", date(YEAR, 4, 8))
        b.rung(owed, "transfer", date(YEAR, 4, 10))
        # The late one's only 催办 was answered (nothing followed it): not counted.
        b.rung(late, "urge", date(YEAR, 3, 11), 1)
        # 答非所问: sent back twice, once at 04:00 on 1 January in Tongliao (still 2024 in UTC).
        on_time.quality_flag = "off_topic"
        b.step(on_time, "reopen", datetime(YEAR, 1, 1, 4, 0, tzinfo=CST))
        b.step(on_time, "reopen", datetime(YEAR, 5, 1, 10, 0, tzinfo=CST))
        b.step(on_time, "reopen", datetime(YEAR, 12, 31, 23, 59, tzinfo=CST) + timedelta(minutes=2))  # 2026
        b.step(owed, "return_rejected", datetime(YEAR, 6, 1, 9, 0, tzinfo=CST))
        b.step(owed, "return_accepted", datetime(YEAR, 6, 2, 9, 0, tzinfo=CST))
        b.rating(on_time, "unsatisfied", datetime(YEAR, 7, 1, tzinfo=CST))
        b.rating(late, "satisfied", datetime(YEAR, 7, 1, tzinfo=CST))
        sheets = {"on_time": on_time.sheet_number, "late": late.sheet_number, "owed": owed.sheet_number}
    counts = {
        "overdue": 2,
        "urge_ignored": 2,
        "supervise": 1,
        "transfer": 1,
        "quality": 2,
        "invalid_return": 1,
    }
    counts["unsatisfied"] = 1
    deducted = sum(Decimal(RULES[k]) * n for k, n in counts.items())
    return {
        "horqin": horqin,
        "kailu": kailu,
        "counts": counts,
        "score": Decimal(100) - deducted,
        "sheets": sheets,
    }


def test_each_rule_deducts_exactly_its_failings_in_the_year(year_2025: dict[str, Any]) -> None:
    with system_session() as db:
        board = services.ranking(db, YEAR, on=AFTER)
    by_unit = {s.workspace_id: s for s in board.units}
    horqin = by_unit[year_2025["horqin"]]
    assert horqin.counts == year_2025["counts"]
    assert Decimal(horqin.score_text) == year_2025["score"] == Decimal("82.5")
    assert by_unit[year_2025["kailu"]].counts == {}  # on time, never escalated
    assert by_unit[year_2025["kailu"]].score_text == "100"
    assert board.units[-1].workspace_id == year_2025["horqin"]  # the only unit with deductions: last
    assert board.final


def test_the_score_explains_itself_case_by_case(year_2025: dict[str, Any]) -> None:
    with system_session() as db:
        unit = services.unit_workspace(db, year_2025["horqin"])
        e = services.explain(db, unit, YEAR, on=AFTER)
    assert Decimal(e.points.base - e.score) / 10 == sum(Decimal(d.points_text) for d in e.deductions)
    assert Decimal(services.show(e.score)) == year_2025["score"]
    by_rule: dict[str, list[str]] = {}
    for d in e.deductions:
        by_rule.setdefault(d.rule, []).append(d.sheet_number)
    sheets = year_2025["sheets"]
    assert sorted(by_rule["overdue"]) == sorted([sheets["late"], sheets["owed"]])
    assert by_rule["urge_ignored"] == [sheets["owed"]] * 2
    assert by_rule["quality"] == [sheets["on_time"]] * 2
    assert by_rule["unsatisfied"] == [sheets["on_time"]]
    assert {d.day for d in e.deductions if d.rule == "quality"} == {date(YEAR, 1, 1), date(YEAR, 5, 1)}
    assert next(d for d in e.deductions if d.rule == "quality").note == "答非所问"


def test_during_the_year_the_projected_score_counts_only_what_has_happened(year_2025: dict[str, Any]) -> None:
    with system_session() as db:
        spring = services.ranking(db, YEAR, on=date(YEAR, 4, 3))
    horqin = next(s for s in spring.units if s.workspace_id == year_2025["horqin"])
    # By 3 April: the late reply and the owed one (due 1 April), the quality send-back of 1 January;
    # the first 催办 (2 April) had not yet been followed by another.
    assert horqin.counts == {"overdue": 2, "quality": 1}
    assert not spring.final and spring.as_of == date(YEAR, 4, 3)


def test_the_centre_and_the_office_see_every_unit_a_principal_only_their_own(
    make_client: Any, year_2025: dict[str, Any]
) -> None:
    for username in ("zx.clerk", "dc.supervisor", "city.leader"):
        c = make_client()
        sign_in(c, username)
        page = c.get(f"/assessment?year={YEAR}")
        assert page.status_code == 200 and "科尔沁区人民政府" in page.text and "82.5" in page.text, username
        unit = c.get(f"/assessment/units/{year_2025['horqin']}?year={YEAR}")
        assert unit.status_code == 200 and year_2025["sheets"]["owed"] in unit.text
    principal = make_client()
    sign_in(principal, "horqin.principal")
    mine = principal.get(f"/assessment/mine?year={YEAR}")
    assert mine.status_code == 200 and "82.5" in mine.text and year_2025["sheets"]["late"] in mine.text
    assert principal.get(f"/assessment?year={YEAR}").status_code == 403
    assert principal.get(f"/assessment/units/{year_2025['kailu']}").status_code == 403
    kailu = make_client()
    sign_in(kailu, "kailu.admin")
    theirs = kailu.get(f"/assessment/mine?year={YEAR}")
    assert theirs.status_code == 200 and "开鲁县人民政府" in theirs.text
    assert year_2025["sheets"]["late"] not in theirs.text and "科尔沁区" not in theirs.text
    handler = make_client()
    sign_in(handler, "horqin.handler")
    assert handler.get("/assessment/mine").status_code == 403


def test_the_centre_admin_sets_the_rules_in_a_checked_form_and_it_is_audited(
    make_client: Any, demo: None
) -> None:
    admin = make_client()
    sign_in(admin, "zx.admin")
    assert "考核扣分规则" in admin.get("/admin/assessment?year=2025").text
    bad = post(admin, "/admin/assessment", RULES | {"year": "2025", "overdue": "0.25", "base": "abc"})
    assert bad.status_code == 422 and "最多一位小数" in bad.text and "基础分" in bad.text
    good = post(admin, "/admin/assessment", RULES | {"year": "2025", "overdue": "1.5"})
    assert good.status_code == 303
    with system_session() as db:
        assert services.points(db, 2025).overdue == 15
        event = db.scalars(select(AuditEvent).where(AuditEvent.action == "assessment.rules")).one()
        assert event.detail["after"]["overdue"] == "1.5" and event.detail["before"]["overdue"] == "1"
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    assert clerk.get("/admin/assessment").status_code == 403


def _pdf_text(data: bytes, tmp_path: Any, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_the_year_end_report_is_a_pdf_and_an_excel_made_in_the_background(
    make_client: Any, worker: Any, year_2025: dict[str, Any], tmp_path: Any
) -> None:
    office = make_client()
    sign_in(office, "dc.supervisor")
    urls = {}
    for fmt in ("pdf", "xlsx"):
        response = post(office, "/assessment/report", {"year": str(YEAR), "format": fmt})
        assert response.status_code == 303 and response.headers["location"].startswith("/jobs/")
        urls[fmt] = response.headers["location"]
    _run_jobs(worker, [int(url.rsplit("/", 1)[-1]) for url in urls.values()])
    pdf = office.get(urls["pdf"] + "/download")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    text = _pdf_text(pdf.content, tmp_path, "report.pdf")
    out = OUTPUT / "assessment"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.pdf").write_bytes(pdf.content)  # for a look at the layout
    assert "科尔沁区人民政府" in text and "82.5" in text and year_2025["sheets"]["owed"] in text
    xlsx = office.get(urls["xlsx"] + "/download")
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)
    rows = list(book["排名"].iter_rows(min_row=3, values_only=True))
    horqin = next(r for r in rows if r[1] == "科尔沁区人民政府")
    assert horqin[-1] == 82.5 and horqin[0] == len(rows)  # last place
    details = [
        r for r in book["扣分明细"].iter_rows(min_row=2, values_only=True) if r[0] == "科尔沁区人民政府"
    ]
    assert len(details) == sum(year_2025["counts"].values())
    assert post(office, "/assessment/report", {"year": "1999"}).status_code == 422


def _run_jobs(worker: Any, job_ids: list[int]) -> None:
    """What the workers and the scheduler's relay do until the jobs are done: a delivery that
    failed once is handed out again by the relay after its back-off (here: at once). Fails with
    the jobs' states and messages if they are not done after a few rounds."""
    from app.jobs.models import Job
    from app.notify.relay import relay_all

    worker()
    for _ in range(5):
        with system_session() as db:
            jobs = [db.get_one(Job, job_id) for job_id in job_ids]
            states = [(j.id, j.state, j.message) for j in jobs]
        if all(state == "done" for _, state, _ in states):
            return
        relay_all(utcnow() + timedelta(hours=1))
        worker()
    raise AssertionError(f"jobs not done: {states}")


def _render_pdf(bulletin_id: int) -> None:
    """What the worker does: run the bulletin's latest PDF job."""
    from app.jobs import services as jobs

    with system_session() as db:
        b = db.get(Bulletin, bulletin_id)
        assert b is not None and b.pdf_job_id is not None and not b.pdf_sha256
        job_id = b.pdf_job_id
    jobs.run(job_id)
    with system_session() as db:
        b = db.get(Bulletin, bulletin_id)
        assert b is not None and b.pdf_sha256


def test_the_bulletin_is_made_once_a_month_and_issued_by_the_centre(
    make_client: Any, year_2025: dict[str, Any], tmp_path: Any
) -> None:
    with system_session() as db:
        made = bulletins.ensure_monthly(db, on=date(YEAR, 5, 3))
        assert made is not None and made.period == f"{YEAR}-04"
        bulletin_id = made.id
    with system_session() as db:
        assert bulletins.ensure_monthly(db, on=date(YEAR, 5, 20)) is None  # run again: nothing new
        assert db.scalar(select(func.count()).select_from(Bulletin)) == 1
        content = db.get(Bulletin, bulletin_id).content  # type: ignore[union-attr]
    horqin = next(r for r in content["rankings"] if r["unit"] == "科尔沁区人民政府")
    # April: due 1 April — the owed one (overdue), a co-unit's and a returned one are not counted.
    assert horqin == horqin | {"due": 1, "on_time": 0, "overdue": 1, "escalated": 1, "rate": 0.0}
    assert [r["sheet"] for r in content["overdue"]] == [year_2025["sheets"]["owed"]]
    assert {r["rung"] for r in content["escalated"]} == {"催办单", "督办单", "移交函"}
    kailu = next(r for r in content["rankings"] if r["unit"] == "开鲁县人民政府")
    assert kailu["rank"] == 1 and kailu["rate"] == 100.0

    principal = make_client()
    sign_in(principal, "horqin.principal")
    assert principal.get(f"/bulletins/{bulletin_id}").status_code == 404  # a draft: the centre's
    assert "2025-04" not in principal.get("/bulletins").text
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    assert post(clerk, f"/bulletins/{bulletin_id}/issue").status_code == 403
    admin = make_client()
    sign_in(admin, "zx.admin")
    page = admin.get(f"/bulletins/{bulletin_id}")
    assert page.status_code == 200 and "待签发" in page.text and year_2025["sheets"]["owed"] in page.text
    # The PDF is a worker's job: the page shows its progress (polled by htmx), no file yet.
    assert f'hx-get="/bulletins/{bulletin_id}/pdf-status"' in page.text and "排队中" in page.text
    assert admin.get(f"/bulletins/{bulletin_id}/pdf").status_code == 409
    _render_pdf(bulletin_id)
    status = admin.get(f"/bulletins/{bulletin_id}/pdf-status", headers={"hx-request": "true"})
    assert 'data-testid="pdf-download"' in status.text and "hx-get" not in status.text
    assert "送审稿" in _pdf_text(admin.get(f"/bulletins/{bulletin_id}/pdf").content, tmp_path, "draft.pdf")
    assert post(admin, f"/bulletins/{bulletin_id}/issue").status_code == 303
    assert post(admin, f"/bulletins/{bulletin_id}/issue").status_code == 409
    with system_session() as db:
        issued = db.get(Bulletin, bulletin_id)
        assert issued is not None and issued.state == "issued" and issued.issued_by_name
        assert db.scalar(select(AuditEvent).where(AuditEvent.action == "bulletin.issued")) is not None
    # Issuing drops the 送审稿 PDF and queues the final one.
    assert admin.get(f"/bulletins/{bulletin_id}/pdf").status_code == 409
    _render_pdf(bulletin_id)
    assert principal.get(f"/bulletins/{bulletin_id}").status_code == 200
    text = _pdf_text(principal.get(f"/bulletins/{bulletin_id}/pdf").content, tmp_path, "issued.pdf")
    assert "4月份" in text and "科尔沁区人民政府" in text and "送审稿" not in text
    # On demand: a period not over yet, a bad one, one that exists.
    assert post(admin, "/bulletins", {"period": "2099-01"}).status_code == 422
    assert post(admin, "/bulletins", {"period": "2025-13"}).status_code == 422
    assert post(admin, "/bulletins", {"period": f"{YEAR}-04"}).status_code == 422
    quarter = post(admin, "/bulletins", {"period": f"{YEAR}-Q2"})
    assert quarter.status_code == 303


def test_making_a_bulletin_renders_nothing_in_the_request(
    make_client: Any, year_2025: dict[str, Any], monkeypatch: Any, tmp_path: Any
) -> None:
    """The request writes the draft and queues its PDF; only the worker renders (WeasyPrint)."""
    from app.documents import render as rendering
    from app.jobs.models import Job

    def refuse(*_: Any, **__: Any) -> bytes:
        raise AssertionError("a page rendered a PDF")

    admin = make_client()
    sign_in(admin, "zx.admin")
    with monkeypatch.context() as m:
        m.setattr(rendering, "render_pdf", refuse)
        made = post(admin, "/bulletins", {"period": f"{YEAR}-03"})
        assert made.status_code == 303
        bulletin_id = int(made.headers["location"].rsplit("/", 1)[1])
        assert "排队中" in admin.get(made.headers["location"]).text
        assert post(admin, f"/bulletins/{bulletin_id}/issue").status_code == 303
    with system_session() as db:
        b = db.get(Bulletin, bulletin_id)
        assert b is not None and b.state == "issued" and b.pdf is None
        kinds = db.scalars(select(Job.kind).where(Job.kind == "bulletin_pdf")).all()
    assert len(kinds) == 2  # the draft's, then the issued one's
    # The draft's job, run late (after the issue), renders the bulletin as it now stands: never a
    # 送审稿 over an issued bulletin. The issue's own job then finds the same content.
    from app.jobs import services as jobs

    with system_session() as db:
        first, second = db.scalars(select(Job.id).where(Job.kind == "bulletin_pdf").order_by(Job.id)).all()
    jobs.run(first)
    final = admin.get(f"/bulletins/{bulletin_id}/pdf")
    assert final.status_code == 200 and "送审稿" not in _pdf_text(final.content, tmp_path, "late.pdf")
    jobs.run(second)
    again = admin.get(f"/bulletins/{bulletin_id}/pdf")
    assert again.status_code == 200 and "送审稿" not in _pdf_text(again.content, tmp_path, "issued.pdf")


def test_the_daily_job_makes_last_months_bulletin_once(demo: None) -> None:
    from tasks.actors import generate_bulletins

    generate_bulletins.fn()
    generate_bulletins.fn()
    with system_session() as db:
        periods = db.scalars(select(Bulletin.period)).all()
    assert periods == [bulletins.previous_month(services.today())]
