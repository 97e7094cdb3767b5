"""督查 and 统计分析 (第六条, 第十九条): the figures, checked against the raw rows and a known data set.

On top of the demo, September 2025 gets nine hand-made cases with the edge cases (a message posted
just after midnight Tongliao time on 1 September and one on 1 October, a reply across the National
Day holiday, valid and invalid returns, extensions, overdue and twice-urged assignments, flags).
The expected figures are written out from that table, or recomputed here from the raw rows in
Python, and compared with the functions and with the cells of the rendered pages.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.cases.models import Assignment, Case, TimelineEntry
from app.db import session_factory, system_session
from app.escalation.models import Escalation
from app.escalation.services import OWED_STATES
from app.supervision import queries, stats
from app.tenants.models import Workspace
from app.tenants.scope import TenantContext, bind_tenant
from app.workflows.deadlines import add_working_days, local_date
from tests.conftest import IS_POSTGRES, OUTPUT
from tests.helpers import post, sign_in

TZ = ZoneInfo("Asia/Shanghai")
SEPT = (date(2025, 9, 1), date(2025, 9, 30))


def _at(text: str) -> datetime:
    """A Tongliao wall-clock time as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ).astimezone(UTC)


@dataclass
class Seed:
    key: str
    unit: str
    registered: str
    title: str
    case_state: str = "published"
    state: str = "closed"
    due: date | None = None
    signed: str | None = None
    flag: str = ""
    category: str = "complain"
    topic: str = "供暖"
    region: str = "科尔沁区"
    actions: tuple[str, ...] = ()
    rungs: tuple[str, ...] = ()


def _today() -> date:
    return local_date(datetime.now(UTC))


def seeds() -> list[Seed]:
    today = _today()
    return [
        # 00:30 on 1 September in Tongliao is still 31 August in UTC: in September.
        Seed(
            "c1",
            "horqin",
            "2025-09-01 00:30",
            "城区供暖温度不达标",
            due=date(2025, 9, 8),
            signed="2025-09-04 10:00",
        ),
        Seed(
            "c2",
            "horqin",
            "2025-09-10 09:00",
            "小区供暖管道漏水",
            due=date(2025, 9, 17),
            signed="2025-09-19 10:00",
        ),
        # Dispatched on 30 September, signed on 9 October: one working day across 国庆.
        Seed(
            "c3",
            "naiman",
            "2025-09-30 20:00",
            "沙漠治理资金使用",
            due=date(2025, 10, 14),
            signed="2025-10-09 10:00",
            topic="生态",
            region="奈曼旗",
            actions=("extension_approved",),
        ),
        Seed(
            "c4",
            "naiman",
            "2025-09-15 09:00",
            "沙漠治理项目停工",
            case_state="assigned",
            state="handling",
            due=date(2025, 9, 22),
            topic="生态",
            region="奈曼旗",
            rungs=("reminder", "urge", "urge", "supervise"),
        ),
        Seed(
            "c5",
            "horqin",
            "2025-09-20 09:00",
            "停车收费不合理",
            case_state="received",
            state="returned",
            due=date(2025, 9, 26),
            topic="交通",
            actions=("return_accepted",),
        ),
        Seed(
            "c6",
            "tax",
            "2025-09-05 09:00",
            "发票开具问题咨询",
            case_state="assigned",
            state="handling",
            due=today,
            category="consult",
            topic="税务",
            region="",
            actions=("return_rejected", "extension_approved"),
        ),
        # 00:30 on 1 October in Tongliao: not in September.
        Seed(
            "c7",
            "naiman",
            "2025-10-01 00:30",
            "道路停车位不足",
            case_state="assigned",
            state="handling",
            due=today + timedelta(days=30),
            flag="perfunctory",
            topic="交通",
            region="奈曼旗",
            rungs=("reminder",),
        ),
        Seed(
            "c8",
            "",
            "2025-09-12 09:00",
            "无实质内容",
            case_state="declined",
            state="",
            category="consult",
            topic="",
        ),
        Seed(
            "c9",
            "horqin",
            "2025-09-25 09:00",
            "供暖收费标准",
            due=date(2025, 10, 10),
            signed="2025-09-26 10:00",
            flag="off_topic",
        ),
    ]


def _load() -> dict[str, int]:
    ids: dict[str, int] = {}
    with system_session() as db:
        ws = {w.slug: w.id for w in db.scalars(select(Workspace))}
        for n, s in enumerate(seeds()):
            registered = _at(s.registered)
            dispatched = registered + timedelta(hours=1) if s.unit else None
            case = Case(
                workspace_id=ws["portal-centre"],
                state=s.case_state,
                board="mayor",
                source_id=f"sup-{s.key}",
                title=s.title,
                body=f"{s.title}，请相关部门尽快处理。",
                posted_at=registered,
                category=s.category,
                topic=s.topic,
                region=s.region,
                registered_at=registered,
                dispatched_at=dispatched,
                due_date=s.due,
                sheet_number=f"督测〔2025〕{n + 1}号" if s.unit else None,
                quality_flag=s.flag,
                decline_reason="unlawful_abusive" if not s.unit else "",
            )
            db.add(case)
            db.flush()
            ids[s.key] = case.id
            if not s.unit:
                continue
            assert dispatched is not None and s.due is not None
            unit = ws[s.unit]
            assignment = Assignment(
                workspace_id=unit,
                case_id=case.id,
                is_lead=True,
                state=s.state,
                sheet_number=case.sheet_number,
                title=s.title,
                body=case.body,
                category=s.category,
                posted_at=registered,
                dispatched_at=dispatched,
                due_date=s.due,
                quality_flag=s.flag,
                signed_at=_at(s.signed) if s.signed else None,
            )
            db.add(assignment)
            db.flush()
            for action in s.actions:
                db.add(
                    TimelineEntry(
                        workspace_id=unit, case_id=case.id, assignment_id=assignment.id, action=action
                    )
                )
            for i, rung in enumerate(s.rungs):
                db.add(
                    Escalation(
                        workspace_id=unit,
                        key=f"sup:{s.key}:{i}",
                        assignment_id=assignment.id,
                        case_id=case.id,
                        rung=rung,
                        ordinal=i,
                        number=f"{rung}〔2025〕{n}{i}号",
                        due_date=s.due,
                        issued_on=s.due,
                        issued_at=_at(f"{s.due} 09:00") + timedelta(days=i),
                    )
                )
    return ids


@pytest.fixture()
def seeded(demo: None) -> dict[str, int]:
    return _load()


def _unit(slug: str) -> int:
    with system_session() as db:
        found = db.scalar(select(Workspace.id).where(Workspace.slug == slug))
    assert found
    return found


# --- the expected figures, from the raw rows ------------------------------------------------------


def expected_counts(today: date, unit: int | None = None) -> dict[str, int]:
    """The dashboard's definitions, applied row by row in Python."""
    soon = add_working_days(today, 1)
    with system_session() as db:
        cases = {c.id: c for c in db.scalars(select(Case))}
        leads = list(db.scalars(select(Assignment).where(Assignment.is_lead.is_(True))))
        entries = {(e.assignment_id, e.action) for e in db.scalars(select(TimelineEntry))}
        rungs = {(e.assignment_id, e.rung) for e in db.scalars(select(Escalation))}
    counts = dict.fromkeys(queries.STATUSES, 0)
    for a in leads:
        case = cases[a.case_id]
        if case.state not in ("received", "assigned") or (unit is not None and a.workspace_id != unit):
            continue
        owed = a.state in OWED_STATES
        hits = {
            "open": owed,
            "due_soon": owed and today <= a.due_date <= soon,
            "overdue": owed and a.due_date < today,
            "returned": a.state == "return_requested" or (a.state == "returned" and case.state == "received"),
            "extended": owed and (a.id, "extension_approved") in entries,
            **{r: owed and (a.id, r) in rungs for r in queries.RUNG_ORDER},
        }
        for key, hit in hits.items():
            counts[key] += int(hit)
    return counts


def _cells(html: str, testid: str, row: str | None = None) -> list[int]:
    table = re.search(rf'data-testid="{testid}".*?</table>', html, re.S)
    assert table, testid
    text = table.group(0)
    if row is not None:
        found = re.search(rf'<tr data-key="{re.escape(row)}">(.*?)</tr>', text, re.S)
        assert found, row
        text = found.group(1)
    return [int(n) for n in re.findall(r'<td class="num">(?:<a [^>]*>)?(\d+)', text)]


# --- the dashboard --------------------------------------------------------------------------------


def test_dashboard_counts_match_the_raw_rows(seeded: dict[str, int], client) -> None:  # type: ignore[no-untyped-def]
    today = _today()
    naiman = _unit("naiman")
    with system_session() as db:
        totals = queries.totals(db, today)
        by_unit = {r.key: r.counts for r in queries.breakdown(db, "unit", today)}
        by_region = {r.key: r.counts for r in queries.breakdown(db, "region", today)}
    assert totals == expected_counts(today)
    assert by_unit[str(naiman)] == expected_counts(today, naiman)
    # Known by construction: naiman's c4 is overdue, urged twice and supervised; c7 is reminded.
    assert by_unit[str(naiman)]["overdue"] >= 1 and by_unit[str(naiman)]["supervise"] == 1
    assert by_unit[str(_unit("tax"))]["due_soon"] >= 1 and by_unit[str(_unit("tax"))]["extended"] == 1
    assert by_unit[str(_unit("horqin"))]["returned"] == 1
    assert sum(r["open"] for r in by_region.values()) == totals["open"]

    sign_in(client, "dc.supervisor")
    page = client.get("/supervision")
    assert page.status_code == 200
    assert _cells(page.text, "totals") == [totals[k] for k in queries.STATUSES]
    assert _cells(page.text, "by-unit", str(naiman)) == [by_unit[str(naiman)][k] for k in queries.STATUSES]
    assert '<script type="application/json" id="supervision-data">' in page.text


def test_a_count_opens_the_list_of_its_cases(seeded: dict[str, int], client) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "dc.supervisor")
    naiman = _unit("naiman")
    page = client.get(f"/supervision/cases?status=overdue&unit={naiman}")
    assert page.status_code == 200
    assert "沙漠治理项目停工" in page.text and f'href="/oversight/{seeded["c4"]}"' in page.text
    assert "道路停车位不足" not in page.text  # open, but not overdue
    # An empty region is a value of its own (tax's c6 has none).
    blank = client.get("/supervision/cases?status=open&region=")
    assert "发票开具问题咨询" in blank.text and "沙漠治理项目停工" not in blank.text
    assert client.get(f"/oversight/{seeded['c4']}").status_code == 200


def test_the_supervision_office_only(seeded: dict[str, int], make_client) -> None:  # type: ignore[no-untyped-def]
    for username, code in (("horqin.handler", 403), ("zx.clerk", 403), ("city.leader", 200)):
        c = make_client()
        sign_in(c, username)
        assert c.get("/supervision", follow_redirects=False).status_code == code, username
        assert c.get("/supervision/quality", follow_redirects=False).status_code == code, username


# --- 第十九条 ---------------------------------------------------------------------------------------


def test_quality_list_shows_each_flag_and_the_highest_rung(seeded: dict[str, int], client) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        rows = {r.case_id: r for r in queries.quality_list(db, _today())}
    assert set(rows) == {seeded["c4"], seeded["c7"], seeded["c9"]}
    assert rows[seeded["c4"]].flags == ("overdue", "long_urged")
    assert rows[seeded["c4"]].top_rung == "supervise" and rows[seeded["c4"]].urges_without_result == 2
    assert rows[seeded["c7"]].flags == ("perfunctory",) and rows[seeded["c7"]].top_rung == "reminder"
    assert rows[seeded["c9"]].flags == ("off_topic",) and rows[seeded["c9"]].top_rung is None

    sign_in(client, "dc.supervisor")
    html = client.get("/supervision/quality").text
    row = re.search(rf'<tr data-case="{seeded["c4"]}">(.*?)</tr>', html, re.S)
    assert row and "逾期办理" in row.group(1) and "久催不办" in row.group(1) and "督办单" in row.group(1)
    assert f'href="/oversight/{seeded["c4"]}"' in row.group(1)
    assert "敷衍塞责" in html and "答非所问" in html


# --- the live set kept by the database (PostgreSQL, migration 0026) --------------------------------


@contextmanager
def _as_workspace(slug: str) -> Iterator[Session]:
    """A transaction of one workspace's staff: row-level security shows it nothing else."""
    db = session_factory()()
    bind_tenant(db, TenantContext.for_workspace(_unit(slug), None))
    try:
        yield db
        db.commit()
    finally:
        db.close()


def _kept_equals_evaluated() -> dict[str, Any]:
    with system_session() as db:
        kept = queries.dashboard(db, _today(), summary=True)
        evaluated = queries.dashboard(db, _today(), summary=False)
    assert kept == evaluated
    return kept


@pytest.mark.skipif(not IS_POSTGRES, reason="the live set is kept by PostgreSQL triggers")
def test_the_live_set_kept_by_the_database_follows_every_change(seeded: dict[str, int]) -> None:
    """The dashboard reads ``supervision_live`` on PostgreSQL: after each kind of change, made in
    the transaction of whoever makes it (a unit, the centre, the sweep), it equals the figures
    evaluated from the source tables."""
    before = _kept_equals_evaluated()["totals"]
    assert before["open"] >= 3 and before["returned"] >= 1 and before["transfer"] == 0
    c4, c6, c7 = (_lead(seeded[k]) for k in ("c4", "c6", "c7"))
    before_units = _kept_equals_evaluated()["breakdowns"]["unit"]
    before_open = {r.label: r.counts["open"] for r in before_units}

    with _as_workspace("naiman") as db:  # the unit signs its overdue reply: no longer owed
        db.get_one(Assignment, c4.id).state = "replied"
    after = _kept_equals_evaluated()["totals"]
    assert (after["open"], after["overdue"], after["supervise"]) == (
        before["open"] - 1,
        before["overdue"] - 1,
        before["supervise"] - 1,
    )

    with _as_workspace("naiman") as db:  # an extension approved on c7
        db.add(
            TimelineEntry(
                workspace_id=c7.workspace_id,
                case_id=c7.case_id,
                assignment_id=c7.id,
                action="extension_approved",
            )
        )
    assert _kept_equals_evaluated()["totals"]["extended"] == before["extended"] + 1

    with system_session() as db:  # the supervision office's 移交 on c7, then (a correction) removed
        db.add(
            Escalation(
                workspace_id=c7.workspace_id,
                key="sup:c7:transfer",
                assignment_id=c7.id,
                case_id=c7.case_id,
                rung="transfer",
                ordinal=9,
                number="移交〔2025〕1号",
                due_date=c7.due_date,
                issued_on=_today(),
                issued_at=datetime.now(UTC),
            )
        )
    assert _kept_equals_evaluated()["totals"]["transfer"] == 1
    with system_session() as db:
        db.execute(delete(Escalation).where(Escalation.key == "sup:c7:transfer"))
    assert _kept_equals_evaluated()["totals"]["transfer"] == 0

    with _as_workspace("portal-centre") as db:  # the centre reclassifies c6 (a tax case)
        db.get_one(Case, seeded["c6"]).category = "complain"
        db.get_one(Case, seeded["c6"]).region = "开鲁县"
    by_region = {r.label: r.counts for r in _kept_equals_evaluated()["breakdowns"]["region"]}
    assert by_region["开鲁县"]["open"] >= 1

    with _as_workspace("portal-centre") as db:  # c5's accepted return: re-dispatched elsewhere
        db.get_one(Case, seeded["c5"]).state = "assigned"
    assert _kept_equals_evaluated()["totals"]["returned"] == before["returned"] - 1

    with system_session() as db:  # a new dispatch
        case = db.get_one(Case, seeded["c6"])
        db.add(
            Assignment(
                workspace_id=_unit("horqin"),
                case_id=case.id,
                is_lead=True,
                state="pending",
                sheet_number="督测〔2025〕99号",
                title=case.title,
                body=case.body,
                category=case.category,
                posted_at=case.posted_at,
                dispatched_at=datetime.now(UTC),
                due_date=_today() + timedelta(days=7),
            )
        )
        db.get_one(Assignment, c6.id).is_lead = False
    final = _kept_equals_evaluated()
    units = {r.label: r.counts["open"] for r in final["breakdowns"]["unit"]}
    tax = next(r.label for r in before_units if r.key == str(c6.workspace_id))
    assert units.get(tax, 0) == before_open[tax] - 1


# --- 统计分析 ---------------------------------------------------------------------------------------


def test_centre_statistics_of_september(seeded: dict[str, int], client) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        s = stats.period_stats(db, *SEPT, _today())
    # c1–c6, c8, c9; c7 was posted at 00:30 on 1 October in Tongliao.
    assert (s.volume, s.declined, s.dispatched) == (8, 1, 7)
    # Replies: c1 3 working days, c2 7, c3 1 (国庆 in between), c9 1.
    assert (s.replied, s.median_days, s.average_days) == (4, 2.0, 3.0)
    # On time c1, c3, c9; late c2 (after its due date) and c4 (still owed, past it).
    assert (s.on_time, s.late, s.on_time_rate) == (3, 2, 60.0)
    assert (s.returns_valid, s.returns_invalid, s.extensions) == (1, 1, 2)
    assert dict((k, n) for k, _, n in s.by_category) == {"complain": 6, "consult": 2}
    assert dict((k, n) for k, _, n in s.by_region)["奈曼旗"] == 2
    assert dict(s.hot_terms)["供暖"] == 3 and dict(s.hot_terms)["沙漠"] == 2

    sign_in(client, "dc.supervisor")
    html = client.get("/stats/centre?start=2025-09-01&end=2025-09-30").text
    assert '<th scope="row">按时答复率（%）</th><td class="num">60.0</td>' in html
    assert '<th scope="row">留言总量</th><td class="num">8</td>' in html
    assert "沙漠" in html and "供暖" in html
    assert client.get("/stats/centre?start=2025-09-30&end=2025-09-01").status_code == 422


def test_a_unit_sees_its_own_statistics_only(seeded: dict[str, int], make_client) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        s = stats.period_stats(db, *SEPT, _today(), unit_id=_unit("horqin"))
    assert (s.volume, s.replied, s.median_days, s.on_time, s.late) == (4, 3, 3.0, 2, 1)
    assert (s.returns_valid, s.returns_invalid, s.extensions) == (1, 0, 0)

    horqin = make_client()
    sign_in(horqin, "horqin.handler")
    html = horqin.get("/stats/unit?start=2025-09-01&end=2025-09-30").text
    assert '<th scope="row">留言总量</th><td class="num">4</td>' in html
    assert "供暖" in html and "沙漠" not in html  # naiman's words never reach horqin
    assert horqin.get("/stats/centre", follow_redirects=False).status_code == 403

    naiman = make_client()
    sign_in(naiman, "naiman.principal")
    html = naiman.get("/stats/unit?start=2025-09-01&end=2025-09-30").text
    assert "沙漠" in html and "供暖" not in html
    assert '<th scope="row">留言总量</th><td class="num">2</td>' in html


def test_hot_terms_leave_out_stopwords() -> None:
    texts = ["请问供暖什么时候开始", "供暖温度太低了", "您好，停车难"]
    assert stats.hot_terms(texts) == [("供暖", 2)]
    assert "请问" not in stats.bigrams("请问您好")


# --- Excel, through a job -------------------------------------------------------------------------


def _download(client, response) -> bytes:  # type: ignore[no-untyped-def]
    from app.jobs import services as jobs

    assert response.status_code == 303, response.text
    job_id = int(response.headers["location"].rsplit("/", 1)[1])
    jobs.run(job_id)
    assert "已完成" in client.get(f"/jobs/{job_id}").text
    data = client.get(f"/jobs/{job_id}/download")
    assert data.status_code == 200
    return data.content


def test_exports_are_jobs_with_the_same_figures(seeded: dict[str, int], make_client) -> None:  # type: ignore[no-untyped-def]
    supervisor = make_client()
    sign_in(supervisor, "dc.supervisor")
    book = load_workbook(
        io.BytesIO(_download(supervisor, post(supervisor, "/supervision/export", {"table": "dashboard"})))
    )
    with system_session() as db:
        totals = queries.totals(db, _today())
    assert [c.value for c in book["合计"][2]][1:] == [totals[k] for k in queries.STATUSES]

    book = load_workbook(
        io.BytesIO(
            _download(
                supervisor,
                post(supervisor, "/stats/centre/export", {"start": "2025-09-01", "end": "2025-09-30"}),
            )
        )
    )
    summary = {row[0].value: row[1].value for row in book["概况"].iter_rows()}
    assert summary["留言总量"] == 8 and summary["按时答复率（%）"] == 60.0

    # A unit's export is its own, whatever the form says.
    horqin = make_client()
    sign_in(horqin, "horqin.handler")
    form = {"start": "2025-09-01", "end": "2025-09-30", "unit_id": str(_unit("naiman"))}
    book = load_workbook(io.BytesIO(_download(horqin, post(horqin, "/stats/unit/export", form))))
    summary = {row[0].value: row[1].value for row in book["概况"].iter_rows()}
    assert summary["留言总量"] == 4
    assert "沙漠" not in [row[0].value for row in book["热点词"].iter_rows()]


def test_a_citizens_title_in_the_quality_export_stays_text(seeded: dict[str, int], make_client) -> None:  # type: ignore[no-untyped-def]
    """Formula injection: a title starting with "=" arrives in Excel as that text, not a formula,
    and a control character Excel refuses does not fail the export."""
    title = '=HYPERLINK("http://evil.example/","点我")'
    with system_session() as db:
        db.get_one(Case, seeded["c4"]).title = title + "\x07"
        for assignment in db.scalars(select(Assignment).where(Assignment.case_id == seeded["c4"])):
            assignment.title = title + "\x07"
        db.commit()
    supervisor = make_client()
    sign_in(supervisor, "dc.supervisor")
    data = _download(supervisor, post(supervisor, "/supervision/export", {"table": "quality"}))
    book = load_workbook(io.BytesIO(data))
    cells = [row[1] for row in book["问题清单"].iter_rows(min_row=2)]
    found = [c for c in cells if isinstance(c.value, str) and "evil.example" in c.value]
    assert [(c.value, c.data_type) for c in found] == [(title, "s")]
    assert b"<f>" not in _sheet_xml(data)


def _sheet_xml(xlsx: bytes) -> bytes:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        return b"".join(z.read(n) for n in z.namelist() if n.startswith("xl/worksheets/"))


# --- 第十九条: a 督办单 issued by hand from the quality list ---------------------------------------------


def _lead(case_id: int) -> Assignment:
    with system_session() as db:
        found = db.scalar(
            select(Assignment).where(Assignment.case_id == case_id, Assignment.is_lead.is_(True))
        )
        assert found is not None
        db.expunge(found)
    return found


def _supervise_rows(assignment_id: int) -> list[Escalation]:
    with system_session() as db:
        rows = list(
            db.scalars(
                select(Escalation).where(
                    Escalation.assignment_id == assignment_id, Escalation.rung == "supervise"
                )
            )
        )
        for row in rows:
            db.expunge(row)
    return rows


REASON = "该件群众反映供暖问题，答复敷衍塞责，请主要负责同志亲自过问，限期整改。"


def test_a_supervisor_issues_a_supervision_sheet_from_the_quality_list(
    seeded: dict[str, int], client
) -> None:  # type: ignore[no-untyped-def]
    from app.accounts.models import User
    from app.assessment import services as assessment
    from app.audit.models import AuditEvent
    from app.cases.models import Counter
    from app.documents import queue as documents_queue
    from app.documents.models import Document
    from app.escalation.models import Notification
    from app.escalation.services import sweep
    from app.notify.models import OutboxMessage

    today = _today()
    c7 = _lead(seeded["c7"])  # 奈曼旗, still handling, flagged 敷衍塞责, only a 提醒单 so far
    with system_session() as db:
        before = assessment.ranking(db, today.year)
        counter = (
            db.scalar(select(Counter.value).where(Counter.series == "督办", Counter.year == today.year)) or 0
        )
    deducted = {s.workspace_id: s.counts.get("supervise", 0) for s in before.units}

    sign_in(client, "dc.supervisor")
    html = client.get("/supervision/quality").text
    assert f'href="/supervision/quality/{seeded["c7"]}/supervise"' in html
    form = client.get(f"/supervision/quality/{seeded['c7']}/supervise")
    assert form.status_code == 200 and "签发督办单" in form.text and "道路停车位不足" in form.text

    # Too short a reason: refused in Chinese, nothing written.
    short = post(client, f"/supervision/quality/{seeded['c7']}/supervise", {"reason": "请办理"})
    assert short.status_code == 422 and "不少于10个字" in short.text
    assert _supervise_rows(c7.id) == []

    done = post(client, f"/supervision/quality/{seeded['c7']}/supervise", {"reason": REASON})
    assert done.status_code == 303 and done.headers["location"] == f"/oversight/{seeded['c7']}"
    [sheet] = _supervise_rows(c7.id)
    number = f"督办〔{today.year}〕{counter + 1}号"  # the sweep's series, no gap
    assert sheet.number == number and sheet.reason == REASON and sheet.issued_on == today
    assert sheet.key == f"{c7.id}:supervise:{c7.due_date.isoformat()}" and sheet.decided_by_id is not None
    with system_session() as db:
        entry = db.scalar(
            select(TimelineEntry).where(
                TimelineEntry.assignment_id == c7.id, TimelineEntry.action == "supervise"
            )
        )
        assert entry is not None and number in entry.comment and REASON in entry.comment
        principal = db.scalar(select(User).where(User.username == "naiman.principal"))
        assert principal is not None
        notice = db.scalar(select(Notification).where(Notification.user_id == principal.id))
        assert notice is not None and number in notice.text and notice.link == f"/inbox/{c7.id}"
        outbox = set(db.scalars(select(OutboxMessage.key).where(OutboxMessage.key.like(f"{sheet.key}:%"))))
        assert outbox, "the principal's e-mail/SMS go through the outbox"
        assert db.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.key.like(f"doc:escalation_notice:escalation-key:{sheet.key}%")
            )
        )
        audit = db.scalar(select(AuditEvent).where(AuditEvent.action == "escalation.supervise"))
        assert audit is not None and audit.target == f"assignment:{c7.id}"
    # The quality list no longer offers a second one for this deadline.
    row = re.search(
        rf'<tr data-case="{seeded["c7"]}">(.*?)</tr>', client.get("/supervision/quality").text, re.S
    )
    assert row and "已督办" in row.group(1) and "/supervise" not in row.group(1)
    # The oversight page shows it on the case's timeline and ladder.
    page_html = client.get(f"/oversight/{seeded['c7']}").text
    assert number in page_html and "督办单" in page_html

    # The notice is rendered by the worker: from 督查室, with the reason.
    documents_queue.issue(f"escalation_notice|escalation-key:{sheet.key}")
    with system_session() as db:
        document = db.scalar(select(Document).where(Document.escalation_id == sheet.id))
        assert document is not None and document.kind == "escalation_notice" and document.number == number
        pdf = db.scalar(select(Document.pdf).where(Document.id == document.id))
    assert pdf and pdf.startswith(b"%PDF")
    out = OUTPUT / "supervision"
    out.mkdir(parents=True, exist_ok=True)
    (out / "manual-supervise-notice.pdf").write_bytes(pdf)

    # Once per deadline: a second one is refused, and the sweep does not add its own.
    again = post(client, f"/supervision/quality/{seeded['c7']}/supervise", {"reason": REASON})
    assert again.status_code == 409 and "不能重复督办" in again.text
    sweep(today)
    assert len(_supervise_rows(c7.id)) == 1

    # It counts in the assessment like a 督办 the sweep issued.
    with system_session() as db:
        after = assessment.ranking(db, today.year)
        explained = assessment.explain(db, assessment.unit_workspace(db, c7.workspace_id), today.year)
    counts = {s.workspace_id: s.counts.get("supervise", 0) for s in after.units}
    assert counts[c7.workspace_id] == deducted.get(c7.workspace_id, 0) + 1
    assert any(d.rule == "supervise" and d.note == number for d in explained.deductions)


def test_a_supervisor_is_refused_a_supervision_sheet_the_sweep_has_decided_but_not_yet_fanned_out(
    seeded: dict[str, int], client
) -> None:  # type: ignore[no-untyped-def]
    """The sweep records its rungs per unit for the workers to write (escalation batches); in the
    seconds before they have, the supervisor's 督办 is still refused: the sweep's 督办单 is
    written first, with the sweep's number, and is the one 督办 of the deadline."""
    from app.escalation.services import fan_out_pending, sweep

    today = _today()
    c7 = _lead(seeded["c7"])
    three_days_late = today
    for _ in range(3):
        three_days_late = add_working_days(three_days_late, -1)
    with system_session() as db:
        db.get_one(Assignment, c7.id).due_date = three_days_late  # test set-up: 3 working days overdue
    assert sweep(today).issued["supervise"] >= 1
    assert _supervise_rows(c7.id) == []  # decided, not yet written: the fan-out has not run

    sign_in(client, "dc.supervisor")
    refused = post(client, f"/supervision/quality/{seeded['c7']}/supervise", {"reason": REASON})
    assert refused.status_code == 409 and "不能重复督办" in refused.text
    assert _supervise_rows(c7.id) == []  # the refusal wrote nothing (the batch waits for its fan-out)
    assert fan_out_pending() >= 1
    [sheet] = _supervise_rows(c7.id)
    assert sheet.decided_by_id is None and sheet.reason == "" and sheet.due_date == three_days_late
    with system_session() as db:
        assert db.get_one(Assignment, c7.id).supervised_for == three_days_late


def test_supervision_sheet_refused_for_other_roles(seeded: dict[str, int], make_client) -> None:  # type: ignore[no-untyped-def]
    c7 = _lead(seeded["c7"])
    url = f"/supervision/quality/{seeded['c7']}/supervise"
    for username in ("city.leader", "zx.clerk", "zx.admin", "naiman.principal", "horqin.handler"):
        c = make_client()
        sign_in(c, username)
        assert c.get(url, follow_redirects=False).status_code == 403, username
        assert post(c, url, {"reason": REASON}).status_code == 403, username
    # A city leader sees the quality list but not the button.
    c = make_client()
    sign_in(c, "city.leader")
    assert "/supervise" not in c.get("/supervision/quality").text
    anonymous = make_client()
    assert anonymous.get(url, follow_redirects=False).status_code in (302, 303, 401)
    assert _supervise_rows(c7.id) == []


def test_supervision_sheet_refused_in_the_wrong_state(seeded: dict[str, int], client) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "dc.supervisor")
    # c9: the reply was published — the case is done.
    c9 = _lead(seeded["c9"])
    form = client.get(f"/supervision/quality/{seeded['c9']}/supervise")
    assert form.status_code == 200 and "不能再督办" in form.text and 'name="reason"' not in form.text
    refused = post(client, f"/supervision/quality/{seeded['c9']}/supervise", {"reason": REASON})
    assert refused.status_code == 422 and "不能再督办" in refused.text
    assert _supervise_rows(c9.id) == []
    # c4: the sweep already issued a 督办单 for this deadline.
    c4 = _lead(seeded["c4"])
    assert len(_supervise_rows(c4.id)) == 1
    assert (
        post(client, f"/supervision/quality/{seeded['c4']}/supervise", {"reason": REASON}).status_code == 409
    )
    assert len(_supervise_rows(c4.id)) == 1
    # c5: a return the centre accepted — not owed; c8: declined, never dispatched; no such case.
    assert (
        post(client, f"/supervision/quality/{seeded['c5']}/supervise", {"reason": REASON}).status_code == 422
    )
    assert client.get(f"/supervision/quality/{seeded['c8']}/supervise").status_code == 404
    assert client.get("/supervision/quality/99999999/supervise").status_code == 404
    assert post(client, "/supervision/quality/99999999/supervise", {"reason": REASON}).status_code == 404


def test_bad_export_period_shows_the_page_in_chinese(seeded: dict[str, int], make_client) -> None:  # type: ignore[no-untyped-def]
    from app.jobs.models import Job

    def jobs() -> int:
        with system_session() as db:
            return len(db.scalars(select(Job.id)).all())

    before = jobs()
    centre = make_client()
    sign_in(centre, "zx.clerk")
    bad = post(centre, "/stats/centre/export", {"start": "2025-13-01", "end": "2025-09-30"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    assert "请按 年-月-日 填写起止日期" in bad.text and 'data-testid="summary"' in bad.text
    assert 'action="/stats/centre/export"' in bad.text
    backwards = post(centre, "/stats/centre/export", {"start": "2025-09-30", "end": "2025-09-01"})
    assert backwards.status_code == 422 and "开始日期不能晚于结束日期" in backwards.text

    unit = make_client()
    sign_in(unit, "horqin.handler")
    bad = post(unit, "/stats/unit/export", {"start": "2020-01-01", "end": "2026-01-01"})
    assert bad.status_code == 422 and "一次最多统计五年" in bad.text
    assert 'action="/stats/unit/export"' in bad.text and "科尔沁区" in bad.text
    assert jobs() == before  # nothing queued


def test_the_dashboard_in_one_query_equals_each_breakdown(seeded: dict[str, int]) -> None:
    """queries.dashboard sums one query grouped by every dimension; it must say what the
    per-dimension queries (used by the Excel export) say, row for row and in the same order."""
    today = _today()
    with system_session() as db:
        data = queries.dashboard(db, today)
        assert data["totals"] == queries.totals(db, today)
        for dim in queries.DIMENSIONS:
            alone = queries.breakdown(db, dim, today)
            assert [(r.key, r.label, r.counts) for r in data["breakdowns"][dim]] == [
                (r.key, r.label, r.counts) for r in alone
            ], dim
