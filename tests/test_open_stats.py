"""Open statistics (/stats, 第十八条, 第二十一条): per month and per unit, from aggregate SQL.

A data set with the awkward cases — messages either side of midnight at the end of a month and of
the year in Tongliao's time, a reply delivered at 23:59 and one at 00:01 of its due date, a reply
published the month after it was delivered, rated and unrated replies, a private reply, an
archived one, a declined message, a case returned and re-dispatched — is inserted with plain ORM
rows. The expected figures are computed here, in Python, from the rows read back, and compared to
the statistics function and to the page's table.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.cases.models import Assignment, Case
from app.db import system_session
from app.public import stats
from app.public.models import Rating
from app.tenants.models import Workspace

TZ = ZoneInfo("Asia/Shanghai")
YEAR = 2025  # a past year: all twelve months shown, whatever today is
ROOT = Path(__file__).resolve().parent.parent


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- the data set ------------------------------------------------------------------------------------

_serial = itertools.count(1)


def _ids() -> dict[str, int]:
    with system_session() as db:
        return {slug: wid for wid, slug in db.execute(select(Workspace.id, Workspace.slug))}


def add_case(
    *,
    registered: str,
    state: str = "published",
    unit: str | None = None,
    dispatched: str | None = None,
    due: str | None = None,
    submitted: str | None = None,
    published: str | None = None,
    rating: str | None = None,
    leads: tuple[tuple[str, str, int], ...] = (),
    co_units: tuple[tuple[str, str, int], ...] = (),
    **fields: Any,
) -> int:
    """One case; ``leads``/``co_units``: (unit, dispatched, round) of its assignments."""
    ws = _ids()
    n = next(_serial)
    with system_session() as db:
        case = Case(
            workspace_id=ws["portal-centre"],
            board="mayor",
            source_id=f"STATS-{n}",
            title=f"统计测试留言{n}",
            body="内容。",
            posted_at=utc(registered) - timedelta(hours=1),
            category="consult",
            registered_at=utc(registered),
            state=state,
            citizen_name="统计测试人",
            citizen_phone="13900001111",
            dispatched_at=utc(dispatched) if dispatched else None,
            due_date=date.fromisoformat(due) if due else None,
            reply_text="答复。" if published else "",
            reply_unit_id=ws[unit] if unit else None,
            reply_submitted_at=utc(submitted) if submitted else None,
            published_at=utc(published) if published else None,
            **fields,
        )
        db.add(case)
        db.flush()
        for is_lead, rows in ((True, leads), (False, co_units)):
            for slug, at, round_ in rows:
                db.add(
                    Assignment(
                        workspace_id=ws[slug],
                        case_id=case.id,
                        round=round_,
                        is_lead=is_lead,
                        state="closed",
                        sheet_number=f"通留〔{YEAR}〕T{n}号",
                        title=case.title,
                        body=case.body,
                        category="consult",
                        posted_at=case.posted_at,
                        dispatched_at=utc(at),
                        due_date=case.due_date or utc(at).date(),
                    )
                )
        if rating:
            db.add(Rating(workspace_id=case.workspace_id, case_id=case.id, score=rating, source="link"))
        return case.id


@pytest.fixture()
def dataset(client):  # type: ignore[no-untyped-def]
    """The edge cases of YEAR (times are UTC; Tongliao is UTC+8)."""
    cases = {
        # Registered 23:30 on 31 January in Tongliao: January. Published in February, on time.
        "jan_end": add_case(
            registered="2025-01-31T15:30",
            unit="horqin",
            dispatched="2025-02-01T01:00",
            due="2025-02-10",
            submitted="2025-02-05T02:07",
            published="2025-02-05T06:00",
            rating="satisfied",
            leads=(("horqin", "2025-02-01T01:00", 1),),
        ),
        # Registered 00:30 on 1 February in Tongliao: February. Delivered 23:59 of its due date (on
        # time); published 00:30 on 1 March in Tongliao: a March reply.
        "feb_start": add_case(
            registered="2025-01-31T16:30",
            unit="education",
            dispatched="2025-02-24T02:00",
            due="2025-02-28",
            submitted="2025-02-28T15:59",
            published="2025-02-28T16:30",
            rating="basic",
            leads=(("education", "2025-02-24T02:00", 1),),
        ),
        # Delivered 00:01 the day after its due date in Tongliao: late.
        "late_by_a_minute": add_case(
            registered="2025-03-01T02:00",
            unit="education",
            dispatched="2025-03-02T02:00",
            due="2025-03-05",
            submitted="2025-03-05T16:01",
            published="2025-03-06T03:00",
            rating="unsatisfied",
            leads=(("education", "2025-03-02T02:00", 1),),
        ),
        # A private reply (第十八条), unrated, on time.
        "private": add_case(
            registered="2025-03-10T01:00",
            unit="horqin",
            dispatched="2025-03-10T03:00",
            due="2025-03-17",
            submitted="2025-03-12T09:13",
            published="2025-03-12T10:00",
            reply_private=True,
            leads=(("horqin", "2025-03-10T03:00", 1),),
        ),
        # Archived after publication (第十六条): still a reply; rated by telephone.
        "archived": add_case(
            registered="2025-04-01T01:00",
            state="archived",
            unit="kailu",
            dispatched="2025-04-01T02:00",
            due="2025-04-08",
            submitted="2025-04-03T05:31",
            published="2025-04-03T07:00",
            rating="satisfied",
            leads=(("kailu", "2025-04-01T02:00", 1),),
        ),
        # Declined (第五条): received, never replied.
        "declined": add_case(
            registered="2025-04-15T01:00", state="declined", decline_reason="duplicate", published=None
        ),
        # Delivered but not yet published: received and dispatched only.
        "under_review": add_case(
            registered="2025-05-02T01:00",
            state="under_review",
            unit="horqin",
            dispatched="2025-05-02T02:00",
            due="2025-05-09",
            submitted="2025-05-06T02:00",
            leads=(("horqin", "2025-05-02T02:00", 1),),
        ),
        # No due date and no dispatch time recorded: a reply, neither on time nor timed.
        "undated": add_case(
            registered="2025-05-05T01:00",
            unit="education",
            submitted="2025-05-07T02:00",
            published="2025-05-07T03:00",
            rating="basic",
        ),
        # Registered 00:30 on 1 January 2025 in Tongliao (still 2024 in UTC); published 23:30 on
        # 31 December 2025 in Tongliao, long after its due date.
        "year_start": add_case(
            registered="2024-12-31T16:30",
            unit="kailu",
            dispatched="2025-01-02T02:00",
            due="2025-01-09",
            submitted="2025-12-31T10:19",
            published="2025-12-31T15:30",
            rating="unsatisfied",
            leads=(("kailu", "2025-01-02T02:00", 1),),
        ),
        # Registered 00:30 on 1 January 2026 in Tongliao: not in 2025 at all.
        "next_year": add_case(
            registered="2025-12-31T16:30",
            state="assigned",
            dispatched="2025-12-31T17:00",
            due="2026-01-09",
            leads=(("horqin", "2025-12-31T17:00", 1),),
        ),
        # Returned by Horqin, re-dispatched to Education (with Naiman as co-unit), returned and
        # re-dispatched to Education again: Horqin and Education each got it once, in June.
        "redispatched": add_case(
            registered="2025-06-01T01:00",
            unit="education",
            dispatched="2025-07-01T02:00",
            due="2025-07-08",
            submitted="2025-07-02T02:41",
            published="2025-07-03T02:00",
            leads=(
                ("horqin", "2025-06-01T02:00", 1),
                ("education", "2025-06-03T02:00", 2),
                ("education", "2025-07-01T02:00", 3),
            ),
            co_units=(("naiman", "2025-06-03T02:00", 2),),
        ),
        # Registered in 2024, answered in January 2025: a 2025 reply, not a 2025 message.
        "from_last_year": add_case(
            registered="2024-06-01T01:00",
            unit="horqin",
            dispatched="2024-06-02T02:00",
            due="2024-06-09",
            submitted="2025-01-09T02:00",
            published="2025-01-10T02:00",
            rating="basic",
            leads=(("horqin", "2024-06-02T02:00", 1),),
        ),
    }
    return cases


# --- the expectation, computed in Python from the rows -----------------------------------------------


@dataclass
class Expected:
    received: int = 0
    replied: int = 0
    on_time: int = 0
    days: list[float] = field(default_factory=list)
    rated: int = 0
    satisfied: int = 0

    def cells(self) -> list[str]:
        """The row as the page prints it."""
        return [
            str(self.received),
            str(self.replied),
            str(self.on_time),
            f"{100 * self.on_time / self.replied:.1f}%" if self.replied else "—",
            f"{sum(self.days) / len(self.days):.1f}" if self.days else "—",
            str(self.rated),
            f"{100 * self.satisfied / self.rated:.1f}%" if self.rated else "—",
        ]


def local(moment: datetime) -> datetime:
    return moment.astimezone(TZ)


def expected(year: int, group: str = "month", unit_id: int | None = None) -> dict[Any, Expected]:
    """Per month (1–12) or per unit id, from every row in the database."""
    with system_session() as db:
        cases = list(db.scalars(select(Case)))
        assignments = list(db.scalars(select(Assignment)))
        ratings = {r.case_id: r.score for r in db.scalars(select(Rating))}
    out: dict[Any, Expected] = defaultdict(Expected)
    if group == "month" and unit_id is None:
        for c in cases:
            if local(c.registered_at).year == year:
                out[local(c.registered_at).month].received += 1
    else:
        first: dict[tuple[int, int], datetime] = {}
        for a in assignments:
            if a.is_lead and local(a.dispatched_at).year == year and unit_id in (None, a.workspace_id):
                key = (a.workspace_id, a.case_id)
                first[key] = min(first.get(key, a.dispatched_at), a.dispatched_at)
        for (workspace_id, _), at in first.items():
            out[local(at).month if group == "month" else workspace_id].received += 1
    for c in cases:
        public = c.state in ("published", "archived") and c.published_at is not None and not c.decline_reason
        if not public or local(c.published_at).year != year or unit_id not in (None, c.reply_unit_id):  # type: ignore[union-attr]
            continue
        row = out[local(c.published_at).month if group == "month" else c.reply_unit_id]  # type: ignore[union-attr]
        row.replied += 1
        if c.due_date and c.reply_submitted_at and local(c.reply_submitted_at).date() <= c.due_date:
            row.on_time += 1
        if c.dispatched_at and c.reply_submitted_at:
            row.days.append((c.reply_submitted_at - c.dispatched_at).total_seconds() / 86400)
        if c.id in ratings:
            row.rated += 1
            row.satisfied += ratings[c.id] in ("satisfied", "basic")
    for row in out.values():  # a rounding tie would make the comparison depend on float noise
        if row.days:
            mean = sum(row.days) / len(row.days) * 10
            assert abs((mean % 1) - 0.5) > 1e-4, "choose times whose average is not a rounding tie"
    return out


def total(rows: dict[Any, Expected]) -> Expected:
    t = Expected()
    for r in rows.values():
        t.received += r.received
        t.replied += r.replied
        t.on_time += r.on_time
        t.days += r.days
        t.rated += r.rated
        t.satisfied += r.satisfied
    return t


def assert_figures(figures: stats.Figures, want: Expected) -> None:
    got = (
        figures.received,
        figures.replied,
        figures.on_time,
        figures.timed,
        figures.rated,
        figures.satisfied,
    )
    assert got == (want.received, want.replied, want.on_time, len(want.days), want.rated, want.satisfied)
    assert figures.days_sum == pytest.approx(sum(want.days), abs=1e-4)


# --- the page's tables -------------------------------------------------------------------------------


class Tables(HTMLParser):
    """Each table's rows by ``data-testid``: {row key: [row header, cell, …]}, plus its caption and
    the scope of its header cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list[str]]] = {}
        self.captions: dict[str, str] = {}
        self.scopes: dict[str, set[str]] = defaultdict(set)
        self._table = ""
        self._row = ""
        self._cell: list[str] | None = None
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("data-testid"):
            self._table = a["data-testid"] or ""
            self.tables[self._table] = {}
        elif self._table and tag == "caption":
            self._in_caption = True
            self.captions[self._table] = ""
        elif self._table and tag == "tr":
            self._row = a.get("data-key") or ""
            if self._row:
                self.tables[self._table][self._row] = []
        elif self._table and tag in ("td", "th"):
            self._cell = []
            if tag == "th":
                self.scopes[self._table].add(a.get("scope") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = ""
        elif tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._cell is not None:
            if self._row:
                self.tables[self._table][self._row].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_caption:
            self.captions[self._table] += data


def parse(html: str) -> Tables:
    tables = Tables()
    tables.feed(html)
    return tables


# --- tests -------------------------------------------------------------------------------------------


def test_the_month_figures_follow_the_definitions_at_every_edge(dataset) -> None:  # type: ignore[no-untyped-def]
    months = stats.open_statistics(YEAR).months
    by = {int(r.key[5:]): r.figures for r in months}
    # Registered either side of midnight on 31 January (and 1 January, still 2024 in UTC).
    assert (by[1].received, by[2].received) == (2, 1)
    # The 2024 message answered in January counts as a January reply, not a January message.
    assert (by[1].replied, by[1].on_time, by[1].rated, by[1].satisfied) == (1, 0, 1, 1)
    # March: the reply published 00:30 on 1 March (delivered 23:59 on its due date: on time), the
    # one delivered a minute after midnight (late) and the private one (on time, unrated).
    assert (by[3].replied, by[3].on_time, by[3].rated, by[3].satisfied) == (3, 2, 2, 1)
    assert by[3].satisfaction_rate == 50.0 and by[3].on_time_rate == 66.7
    # April: the archived reply counts; the declined message is received but never replied.
    assert (by[4].received, by[4].replied, by[4].rated) == (2, 1, 1)
    # May: the reply under review is not counted; the undated one is neither on time nor timed.
    assert (by[5].received, by[5].replied, by[5].on_time, by[5].timed) == (2, 1, 0, 0)
    assert by[5].avg_days is None and by[5].on_time_rate == 0.0
    # 31 December 23:30 in Tongliao is December; 00:30 on 1 January 2026 is not 2025.
    assert (by[12].received, by[12].replied, by[12].on_time) == (0, 1, 0)
    assert by[7].avg_days == pytest.approx(1.0, abs=0.05)  # dispatched again on 1 July


def test_the_statistics_function_matches_the_rows(dataset) -> None:  # type: ignore[no-untyped-def]
    for year in (YEAR, stats.this_year()):  # this year also holds the demo's messages
        result = stats.open_statistics(year)
        want = expected(year)
        for row in result.months:
            assert_figures(row.figures, want[int(row.key[5:])])
        assert_figures(result.total.figures, total(want))


def test_the_page_shows_the_same_figures_as_the_rows(client, dataset) -> None:  # type: ignore[no-untyped-def]
    page = client.get(f"/stats?year={YEAR}")
    assert page.status_code == 200
    tables = parse(page.text)
    months = tables.tables["stats-months"]
    want = expected(YEAR)
    assert list(months) == [f"{YEAR}-{m:02d}" for m in range(1, 13)] + ["total"]
    for m in range(1, 13):
        assert months[f"{YEAR}-{m:02d}"] == [f"{m}月", *want[m].cells()], m
    assert months["total"] == ["全年合计", *total(want).cells()]
    # The per-unit table: every unit with something in the year, by replies.
    ids = _ids()
    per_unit = expected(YEAR, group="unit")
    units = tables.tables["stats-units"]
    assert set(units) == {slug for slug, wid in ids.items() if wid in per_unit}
    for slug, cells in units.items():
        assert cells[1:] == per_unit[ids[slug]].cells(), slug
    assert units["horqin"][1] == "4"  # jan_end, private, under_review, redispatched (not next_year)
    assert units["education"][1] == "3"  # feb_start, late_by_a_minute, redispatched once; not undated
    assert "naiman" not in units  # a co-unit is not the lead unit


def test_one_units_months_count_what_it_was_given_and_what_it_answered(client, dataset) -> None:  # type: ignore[no-untyped-def]
    ids = _ids()
    page = client.get(f"/stats?year={YEAR}&unit=education")
    tables = parse(page.text)
    assert "stats-units" not in tables.tables
    assert "通辽市教育局" in tables.captions["stats-months"] and "交办" in page.text
    want = expected(YEAR, unit_id=ids["education"])
    months = tables.tables["stats-months"]
    for m in range(1, 13):
        assert months[f"{YEAR}-{m:02d}"][1:] == want[m].cells(), m
    assert months[f"{YEAR}-06"][1] == "1" and months[f"{YEAR}-07"][1] == "0"  # re-dispatched: once
    result = stats.open_statistics(YEAR, "education")
    assert_figures(result.total.figures, total(want))


def test_the_page_is_an_accessible_table_first_and_a_chart_second(client, dataset) -> None:  # type: ignore[no-untyped-def]
    page = client.get(f"/stats?year={YEAR}")
    html = page.text
    tables = parse(html)
    assert tables.captions["stats-months"].startswith(f"{YEAR}年全市各月办理情况")
    assert tables.scopes["stats-months"] == {"col", "row"}
    assert tables.scopes["stats-units"] == {"col", "row"}
    charts = re.findall(r'<div id="stats-chart-\w+" class="[^"]*" role="img" aria-label="([^"]+)">', html)
    assert len(charts) == 2 and all("见下表" in label for label in charts)
    assert f"受理留言共{total(expected(YEAR)).received}件" in charts[0]
    # Scripts: files of this site only, and the data as JSON (CSP: no inline code).
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    for attrs, body in scripts:
        assert 'src="/static/' in attrs or (
            'type="application/json"' in attrs and body.strip().startswith("{")
        )
    assert 'src="/static/vendor/echarts/echarts-6.1.0.min.js"' in html
    data = json.loads(
        re.search(r'<script type="application/json" id="stats-data">(.*?)</script>', html, re.S).group(1)
    )  # type: ignore[union-attr]
    assert data["received"] == [expected(YEAR)[m].received for m in range(1, 13)]
    assert data["months"][0] == "1月" and len(data["units"]) == len(tables.tables["stats-units"])


def test_the_page_holds_no_personal_data_and_may_be_cached(client, dataset) -> None:  # type: ignore[no-untyped-def]
    for url in (f"/stats?year={YEAR}", "/stats", f"/stats?year={YEAR}&unit=horqin"):
        page = client.get(url)
        for secret in ("统计测试人", "13900001111", "王先生", "13847511000", "统计测试留言"):
            assert secret not in page.text, (url, secret)
        assert page.headers["cache-control"] == "public, max-age=300"
        assert "set-cookie" not in page.headers  # no CSRF cookie: a shared cache may keep it


def test_echarts_is_vendored_checked_and_loaded_only_on_the_statistics_page(client) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    sums = dict(
        reversed(line.split("  ", 1)) for line in (ROOT / "static/vendor/SHA256SUMS").read_text().splitlines()
    )
    name = "echarts/echarts-6.1.0.min.js"
    data = (ROOT / "static/vendor" / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == sums[name]
    served = client.get(f"/static/vendor/{name}")
    assert served.status_code == 200 and served.content == data
    assert "sha256sum --quiet -c SHA256SUMS" in (ROOT / "scripts/install.sh").read_text()
    for path in ("/", "/replies", "/search", "/declined"):
        assert "echarts" not in client.get(path).text, path
    assert "echarts" in client.get("/stats").text


def test_a_bad_year_or_unit_shows_this_year_for_all_units(client) -> None:  # type: ignore[no-untyped-def]
    this_year = stats.this_year()
    for query in (
        "year=abc",
        f"year={this_year + 1}",
        "year=1999",
        "unit=no-such-unit",
        "unit=portal-centre",
    ):
        page = client.get(f"/stats?{query}")
        assert page.status_code == 200, query
        assert f"<h1>{this_year}年办理统计</h1>" in page.text, query
        assert 'data-testid="stats-units"' in page.text or "暂无交办或答复" in page.text
    months = parse(client.get("/stats").text).tables["stats-months"]
    now = datetime.now(UTC).astimezone(TZ)
    assert len(months) == now.month + 1  # the months so far, and the total
