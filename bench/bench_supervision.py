"""Supervisor dashboard and annual assessment at 1,000,000 cases over five years (issue 7).

Usage:
    scripts/services.sh     # PostgreSQL + Redis up, role `minpan`
    MINPAN_DATABASE_URL=postgresql+psycopg://minpan@127.0.0.1:5432/minpan_supervision_bench \
        .venv/bin/python -m bench.bench_supervision --cases 1000000 --runs 30 --explain

Seeds first if needed (one process; the database is created if missing, owned by the app role,
migrated, the demo units and people loaded, every unit given a principal — the helpers of
bench/seed_published.py and bench/seed_open_assignments.py), then COPYs as ``postgres`` (row-level
security refuses COPY to the app role) N cases registered on the working days of the five years
up to 2026-11-27, with their lead assignments, the timeline steps the assessment and the dashboard
read, the 三单一函 a daily sweep would have issued, and ratings:

* older than 45 days: 3 % declined, 0.5 % still owed (long overdue, on the ladder), the rest
  answered — 30 % published, 70 % archived; the last 45 days: 5 % awaiting triage, 3 % declined,
  54 % owed (across the owed states, 2 % of them a return awaiting the centre), 5 % under review,
  the rest published;
* 3 % extended by 1–3 working days (``extension_approved``), 2 % returned and re-dispatched to
  another unit (``return_accepted``, two rounds), 1 % a refused return (``return_rejected``), 2 % a
  reply sent back for quality (``reopen``, a 第十九条 flag), 8 % of replies signed late;
* the 提醒单/催办单/督办单 a sweep running every working day issued before the reply was signed
  (``app.escalation.services.simulate``), and a 移交函 for 1 in 20 督办;
* the timeline steps the queries read (dispatch, sign and the special steps above; not every
  step of the workflow, to keep the seed within 15 minutes on a shared machine);
* 25 % of answered cases rated (12 % of those 不满意).

Then, in one run: ``minpan serve`` (``python -m app.cli serve``, one uvicorn worker, the stub
broker, so no in-process worker) and, interleaved one request at a time, the supervisor dashboard
``/supervision`` over HTTP as ``dc.supervisor`` against the page's own statements replayed alone
through the driver; and the full annual assessment (``app.assessment.services.ranking``: every
unit, every rule) for the current and the previous year against one hand-written aggregate SQL
statement per rule computing the same counts (checked equal).
"""

from __future__ import annotations

import argparse
import io
import random
import signal
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
from sqlalchemy import create_engine, text

from app.calendar import days
from app.db import get_engine, system_session
from app.escalation.services import OWED_STATES, RUNGS, Thresholds, _key, simulate
from app.settings import get_settings
from bench.bench_public import captured, replay, serving
from bench.seed_cases import _copy, _line, rebuild_live_set, without_triggers
from bench.seed_open_assignments import admin_url, ensure_principals
from bench.seed_published import _comment, ensure_database

MARKER = "minpan supervision bench"
CASE_ID_BASE = 10_000_000
TODAY = date(2026, 11, 27)  # fixed, so that every seed of N is the same data
YEARS = 5
RECENT_DAYS = 45
OWED_WEIGHTS = {
    "pending": 15,
    "handling": 50,
    "awaiting_signoff": 12,
    "return_drafted": 2,
    "return_requested": 2,
    "extension_requested": 6,
    "extension_pending": 5,
    "explanation_requested": 3,
}
TOPICS = ("供暖", "物业", "道路", "教育", "医保", "养老", "就业", "拆迁", "环保", "交通", "")
REGIONS = ("科尔沁区", "开鲁县", "奈曼旗", "库伦旗", "扎鲁特旗", "霍林郭勒市", "科左中旗", "科左后旗", "")
CATEGORY_WEIGHTS = {"consult": 40, "suggest": 15, "complain": 25, "help": 15, "other": 5}
FLAGS = ("off_topic", "perfunctory", "buck_passing", "words_not_deeds")
CASE_COLUMNS = (
    "id", "workspace_id", "state", "version", "board", "source_id", "title", "body", "posted_at",
    "category", "topic", "region", "citizen_name", "citizen_phone", "citizen_email", "registered_at",
    "decline_reason", "decline_explanation", "decline_suggestion", "sheet_number", "dispatched_at",
    "due_date", "instructions", "reply_text", "reply_private", "reply_is_explanation", "reply_unit_id",
    "reply_handler_name", "reply_handler_phone", "reply_signed_by", "reply_signature",
    "reply_submitted_at", "quality_flag", "published_at", "archived_at",
)  # fmt: skip
ASSIGNMENT_COLUMNS = (
    "id", "workspace_id", "case_id", "round", "is_lead", "state", "version", "sheet_number",
    "lead_unit_name", "title", "body", "category", "posted_at", "citizen_name", "citizen_phone",
    "citizen_email", "instructions", "dispatched_at", "due_date", "received_at", "reply_text",
    "reply_private", "draft_version", "signed_version", "signature", "signed_at", "return_reason",
    "return_signature", "extension_days", "extension_reason", "centre_comment", "quality_flag",
    "contribution", "explanation_reason", "explanation_consented",
)  # fmt: skip
TIMELINE_COLUMNS = (
    "workspace_id", "case_id", "assignment_id", "at", "actor_name", "workspace_name", "action",
    "from_state", "to_state", "comment", "signature",
)  # fmt: skip
ESCALATION_COLUMNS = (
    "workspace_id", "key", "assignment_id", "case_id", "rung", "ordinal", "number", "due_date",
    "issued_on", "issued_at", "reason", "addressee",
)  # fmt: skip
RATING_COLUMNS = ("workspace_id", "case_id", "score", "comment", "source", "created_at")


# --- seed ------------------------------------------------------------------------------------------


def marker_text(total: int) -> str:
    return f"{MARKER}: cases={total} today={TODAY.isoformat()}"


def seeded_for() -> str | None:
    with create_engine(admin_url()).connect() as conn:
        return _comment(conn, str(get_engine().url.database))


class Maker:
    """Makes the rows of the seed, deterministically, as COPY text."""

    def __init__(self, centre: int, units: list[int], unit_names: dict[int, str]) -> None:
        self.centre, self.units, self.names = centre, units, unit_names
        self.rng = random.Random(20261127)
        # Counties get more messages than a bureau or a vertical department.
        self.unit_weights = [3 if i < 12 else 1 for i in range(len(units))]
        calendar = days.current()
        start = TODAY - timedelta(days=YEARS * 365)
        self.working = [
            start + timedelta(days=n)
            for n in range((TODAY - start).days + 1)
            if calendar.is_working_day(start + timedelta(days=n))
        ]
        self.zone = ZoneInfo(get_settings().timezone)
        self.ladders: dict[date, list[tuple[date, str, int]]] = {}
        self.counters: Counter[tuple[str, int]] = Counter()
        self.next_assignment = 1
        self.t = Thresholds()
        self.cases, self.assignments, self.timeline = io.StringIO(), io.StringIO(), io.StringIO()
        self.escalations, self.ratings = io.StringIO(), io.StringIO()
        self.tally: Counter[str] = Counter()

    def at(self, day: date, hour: int = 9, spread: int = 8 * 3600) -> datetime:
        local = datetime.combine(day, time_of_day(hour), tzinfo=self.zone)
        return (local + timedelta(seconds=self.rng.randrange(spread))).astimezone(UTC)

    def add(self, day: date, n: int) -> date:
        return days.current().add(day, n)[0]

    def ladder(self, due: date) -> list[tuple[date, str, int]]:
        if due not in self.ladders:
            self.ladders[due] = simulate(due, self.t, days_after=40)
        return self.ladders[due]

    def step(
        self, case_id: int, workspace_id: int, action: str, at: datetime, assignment: int | None
    ) -> None:
        self.timeline.write(
            _line(
                {
                    "workspace_id": workspace_id,
                    "case_id": case_id,
                    "assignment_id": assignment,
                    "at": at.isoformat(),
                    "actor_name": "经办人" if assignment else "运维中心",
                    "workspace_name": self.names.get(workspace_id, "运维中心"),
                    "action": action,
                },
                TIMELINE_COLUMNS,
            )
        )
        self.tally["timeline"] += 1

    def rungs(self, cid: int, aid: int, unit: int, due: date, until: date) -> None:
        """What the daily sweep issued before ``until`` (the day the reply was signed, or today)."""
        issued = [s for s in self.ladder(due) if s[0] < until]
        for day, rung, ordinal in issued:
            series = RUNGS[rung][1]
            self.counters[series, day.year] += 1
            self._escalation(cid, aid, unit, due, day, rung, ordinal, self.counters[series, day.year])
        if any(r == "supervise" for _, r, _ in issued) and self.rng.random() < 0.05:
            day = self.add(issued[-1][0], 3)
            if day < until:
                self.counters["移交", day.year] += 1
                self._escalation(cid, aid, unit, due, day, "transfer", 1, self.counters["移交", day.year])

    def _escalation(
        self, cid: int, aid: int, unit: int, due: date, day: date, rung: str, ordinal: int, n: int
    ) -> None:
        transfer = rung == "transfer"
        self.escalations.write(
            _line(
                {
                    "workspace_id": unit,
                    "key": _key(aid, rung, due, ordinal),
                    "assignment_id": aid,
                    "case_id": cid,
                    "rung": rung,
                    "ordinal": ordinal,
                    "number": f"{RUNGS[rung][1]}〔{day.year}〕{n}号",
                    "due_date": due.isoformat(),
                    "issued_on": day.isoformat(),
                    "issued_at": datetime.combine(day, time_of_day(8), tzinfo=self.zone)
                    .astimezone(UTC)
                    .isoformat(),
                    "reason": "经催办、督办仍未答复，群众反映强烈。" if transfer else "",
                    "addressee": "通辽市纪委监委" if transfer else "",
                },
                ESCALATION_COLUMNS,
            )
        )
        self.tally[rung] += 1

    def assignment(
        self,
        cid: int,
        unit: int,
        *,
        round_: int,
        state: str,
        sheet: str,
        title: str,
        posted: datetime,
        dispatched: datetime,
        due: date,
        signed: datetime | None,
        flag: str = "",
        extension: int | None = None,
    ) -> int:
        aid = self.next_assignment
        self.next_assignment += 1
        self.assignments.write(
            _line(
                {
                    "id": aid,
                    "workspace_id": unit,
                    "case_id": cid,
                    "round": round_,
                    "is_lead": "true",
                    "state": state,
                    "version": 3,
                    "sheet_number": sheet,
                    "lead_unit_name": self.names[unit],
                    "title": title,
                    "body": title,
                    "category": "consult",
                    "posted_at": posted.isoformat(),
                    "dispatched_at": dispatched.isoformat(),
                    "due_date": due.isoformat(),
                    "received_at": (dispatched + timedelta(hours=2)).isoformat(),
                    "reply_text": "经调查核实，已处理。" if signed else "",
                    "reply_private": "false",
                    "draft_version": 1 if signed else 0,
                    "signed_version": 1 if signed else None,
                    "signed_at": signed.isoformat() if signed else None,
                    "extension_days": extension,
                    "quality_flag": flag,
                    "explanation_consented": "false",
                },
                ASSIGNMENT_COLUMNS,
            )
        )
        self.tally["assignments"] += 1
        return aid

    def case(self, cid: int) -> None:
        rng = self.rng
        received = rng.choice(self.working)
        age = (TODAY - received).days
        registered = self.at(received)
        posted = registered - timedelta(hours=rng.randint(1, 40))
        r = rng.random()
        if age <= RECENT_DAYS:
            state = (
                "received" if r < 0.05 else "declined" if r < 0.08 else "assigned" if r < 0.62
                else "under_review" if r < 0.67 else "published"
            )  # fmt: skip
        else:
            state = (
                "declined"
                if r < 0.03
                else "assigned"
                if r < 0.035
                else "published"
                if r < 0.326
                else "archived"
            )
        if state == "received" and age > 3:
            state = "assigned"
        title = f"{rng.choice(TOPICS) or '其他'}问题反映{cid % 1000}"
        unit = rng.choices(self.units, self.unit_weights)[0]
        sheet = f"通留〔{received.year}〕B{cid}号" if state not in ("received", "declined") else None
        values: dict[str, Any] = {
            "id": cid,
            "workspace_id": self.centre,
            "state": state,
            "version": 5,
            "board": "mayor" if rng.random() < 0.8 else "chairman",
            "source_id": f"B-{cid}",
            "title": title,
            "body": f"{title}，请有关部门尽快处理。",
            "posted_at": posted.isoformat(),
            "category": rng.choices(list(CATEGORY_WEIGHTS), list(CATEGORY_WEIGHTS.values()))[0],
            "topic": rng.choice(TOPICS),
            "region": rng.choice(REGIONS),
            "registered_at": registered.isoformat(),
            "sheet_number": sheet,
            "reply_private": "false",
            "reply_is_explanation": "false",
            "dispatched_at": None,
            "due_date": None,
            "reply_unit_id": None,
            "reply_submitted_at": None,
            "published_at": None,
            "archived_at": None,
        }
        self.tally[state] += 1
        if state in ("received", "declined"):
            if state == "declined":
                values["decline_reason"] = "out_of_scope"
                self.step(cid, self.centre, "decline", registered + timedelta(hours=3), None)
            self.cases.write(_line(values, CASE_COLUMNS))
            return
        dispatched = registered + timedelta(hours=rng.randint(1, 6))
        due = self.add(received, 5)
        round_ = 1
        if rng.random() < 0.02 and age > 12:  # returned by another unit the same day, re-dispatched
            other = rng.choice([u for u in self.units if u != unit])
            first = self.assignment(
                cid, other, round_=1, state="returned", sheet=sheet or "", title=title, posted=posted,
                dispatched=dispatched, due=due, signed=None,
            )  # fmt: skip
            self.step(cid, other, "return_accepted", dispatched + timedelta(hours=5), first)
            received = self.add(received, 1)
            dispatched = self.at(received)
            due = self.add(received, 5)
            round_ = 2
        extension = None
        if rng.random() < 0.03:
            extension = rng.randint(1, 3)
            due = self.add(due, extension)
        owed = state == "assigned"
        late = (not owed) and rng.random() < 0.08
        if owed:
            signed = None
            a_state = rng.choices(list(OWED_WEIGHTS), list(OWED_WEIGHTS.values()))[0]
        else:
            sign_day = self.add(due, rng.randint(1, 8)) if late else self.add(received, rng.randint(1, 5))
            sign_day = min(sign_day, TODAY)
            signed = self.at(sign_day)
            a_state = "submitted" if state == "under_review" else "closed"
        flag = rng.choice(FLAGS) if (not owed and rng.random() < 0.02) else ""
        aid = self.assignment(
            cid, unit, round_=round_, state=a_state, sheet=sheet or "", title=title, posted=posted,
            dispatched=dispatched, due=due, signed=signed, flag=flag, extension=extension,
        )  # fmt: skip
        self.step(cid, self.centre, "dispatch", dispatched, None)
        if extension:
            self.step(cid, unit, "extension_approved", dispatched + timedelta(days=2), aid)
        if rng.random() < 0.01:
            self.step(cid, unit, "return_rejected", dispatched + timedelta(hours=6), aid)
        if flag:  # the first reply was sent back; the one signed later was accepted
            self.step(cid, unit, "reopen", (signed or dispatched) - timedelta(days=1), aid)
            values["quality_flag"] = flag
        self.rungs(cid, aid, unit, due, signed.astimezone(self.zone).date() if signed else TODAY)
        values |= {"dispatched_at": dispatched.isoformat(), "due_date": due.isoformat()}
        if signed is not None:
            self.step(cid, unit, "sign", signed, aid)
            delivered = signed + timedelta(minutes=rng.randint(5, 120))
            values |= {
                "reply_text": "经调查核实，已处理。",
                "reply_unit_id": unit,
                "reply_submitted_at": delivered.isoformat(),
                "reply_signed_by": "主要负责人",
            }
            if state in ("published", "archived"):
                published = delivered + timedelta(hours=rng.randint(1, 6))
                values["published_at"] = published.isoformat()
                if state == "archived":
                    values["archived_at"] = (published + timedelta(days=7)).isoformat()
                if rng.random() < 0.25:
                    s = rng.random()
                    score = "satisfied" if s < 0.6 else "basic" if s < 0.88 else "unsatisfied"
                    self.ratings.write(
                        _line(
                            {
                                "workspace_id": self.centre,
                                "case_id": cid,
                                "score": score,
                                "source": "link",
                                "created_at": (published + timedelta(days=rng.randint(1, 10))).isoformat(),
                            },
                            RATING_COLUMNS,
                        )
                    )
                    self.tally["ratings"] += 1
        self.cases.write(_line(values, CASE_COLUMNS))

    def flush(self, admin: Any) -> None:
        with admin.begin() as conn:
            without_triggers(conn)  # the live set is rebuilt once at the end
            _copy(conn, "cases", list(CASE_COLUMNS), self.cases)
            _copy(conn, "assignments", list(ASSIGNMENT_COLUMNS), self.assignments)
            _copy(conn, "timeline_entries", list(TIMELINE_COLUMNS), self.timeline)
            _copy(conn, "escalations", list(ESCALATION_COLUMNS), self.escalations)
            _copy(conn, "ratings", list(RATING_COLUMNS), self.ratings)
        self.cases, self.assignments, self.timeline = io.StringIO(), io.StringIO(), io.StringIO()
        self.escalations, self.ratings = io.StringIO(), io.StringIO()


def seed(total: int, *, batch: int = 50_000) -> None:
    """Seed (or keep) N cases; one process, COPY as the superuser."""
    from app import migrate
    from app.demo import load_demo

    ensure_database(False)
    if seeded_for() == marker_text(total):
        print(f"already seeded: {total:,} cases")
        return
    started = time.perf_counter()
    migrate.upgrade()
    with system_session() as db:
        load_demo(db)
    days.invalidate()
    ensure_principals()
    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('minpan.system', 'on', true)"))
        if conn.execute(text("SELECT count(*) FROM cases WHERE id >= :b"), {"b": CASE_ID_BASE}).scalar():
            raise SystemExit(
                f"{engine.url.database} holds an unfinished seed: drop the database and run again"
            )
        centre = conn.execute(text("SELECT id FROM workspaces WHERE kind = 'centre'")).scalar()
        rows = conn.execute(
            text(
                "SELECT id, short_name FROM workspaces "
                "WHERE kind IN ('county', 'bureau', 'vertical') ORDER BY id"
            )
        ).all()
        first_assignment = (
            conn.execute(text("SELECT coalesce(max(id), 0) FROM assignments")).scalar() or 0
        ) + 1
        counters = dict(
            ((s, y), v) for s, y, v in conn.execute(text("SELECT series, year, value FROM counters")).all()
        )
    maker = Maker(int(centre), [r[0] for r in rows], {r[0]: r[1] for r in rows})
    maker.next_assignment = first_assignment
    maker.counters.update(counters)
    admin = create_engine(admin_url())
    for i in range(total):
        maker.case(CASE_ID_BASE + i)
        if (i + 1) % batch == 0 or i + 1 == total:
            maker.flush(admin)
            print(f"{i + 1:>9,} cases  {time.perf_counter() - started:6.1f} s", flush=True)
    with admin.begin() as conn:
        for (series, year), value in maker.counters.items():
            conn.execute(
                text(
                    "INSERT INTO counters (series, year, value) VALUES (:s, :y, :v) "
                    "ON CONFLICT (series, year) DO UPDATE SET value = greatest(counters.value, :v)"
                ),
                {"s": series, "y": year, "v": value},
            )
        for table in ("cases", "assignments", "escalations", "timeline_entries", "ratings"):
            conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")  # noqa: S608
            )
        rebuild_live_set(conn)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        conn.execute(text(f"COMMENT ON DATABASE \"{engine.url.database}\" IS '{marker_text(total)}'"))
    admin.dispose()
    print(f"seeded {total:,} cases in {time.perf_counter() - started:.1f} s: {dict(maker.tally)}", flush=True)


# --- the hand-written SQL: the same numbers, one statement each ------------------------------------


OWED = ", ".join(f"'{state}'" for state in OWED_STATES)

# The dashboard's counts (totals and the five breakdowns) in one statement: the live lead
# assignments, their rungs and extensions gathered once, GROUPING SETS for the breakdowns.
RAW_DASHBOARD = """
WITH lead AS (
    SELECT a.id, a.workspace_id, c.category, c.topic, c.region, c.board, a.due_date,
           a.state IN ({OWED}) AS owed,
           (a.state = 'return_requested' OR (a.state = 'returned' AND c.state = 'received')) AS returned
    FROM assignments a JOIN cases c ON c.id = a.case_id
    WHERE a.is_lead AND c.state IN ('received', 'assigned')
      AND (a.state IN ({OWED}) OR a.state IN ('return_requested', 'returned'))
), rungs AS (
    SELECT e.assignment_id,
           bool_or(e.rung = 'reminder') AS reminder, bool_or(e.rung = 'urge') AS urge,
           bool_or(e.rung = 'supervise') AS supervise, bool_or(e.rung = 'transfer') AS transfer
    FROM escalations e JOIN lead l ON l.id = e.assignment_id AND l.owed
    GROUP BY e.assignment_id
), extended AS (
    SELECT DISTINCT t.assignment_id FROM timeline_entries t
    WHERE t.action = 'extension_approved' AND t.assignment_id IN (SELECT id FROM lead WHERE owed)
)
SELECT GROUPING(l.workspace_id, l.category, l.topic, l.region, l.board) AS g,
       l.workspace_id, l.category, l.topic, l.region, l.board,
       count(*) FILTER (WHERE l.owed) AS open,
       count(*) FILTER (WHERE l.owed AND l.due_date BETWEEN %(today)s AND %(soon)s) AS due_soon,
       count(*) FILTER (WHERE l.owed AND l.due_date < %(today)s) AS overdue,
       count(*) FILTER (WHERE l.returned) AS returned,
       count(*) FILTER (WHERE l.owed AND x.assignment_id IS NOT NULL) AS extended,
       count(*) FILTER (WHERE l.owed AND r.reminder) AS reminder,
       count(*) FILTER (WHERE l.owed AND r.urge) AS urge,
       count(*) FILTER (WHERE l.owed AND r.supervise) AS supervise,
       count(*) FILTER (WHERE l.owed AND r.transfer) AS transfer
FROM lead l LEFT JOIN rungs r ON r.assignment_id = l.id LEFT JOIN extended x ON x.assignment_id = l.id
GROUP BY GROUPING SETS ((), (l.workspace_id), (l.category), (l.topic), (l.region), (l.board))
""".replace("{OWED}", OWED)
DIMENSION_BITS = {
    "unit": 15,
    "category": 23,
    "topic": 27,
    "region": 29,
    "board": 30,
}  # GROUPING() of each set

# The assessment: one aggregate per rule, every unit of the year (app/assessment/rules.py in words).
RAW_ASSESSMENT = {
    "overdue": """
        SELECT a.workspace_id, count(*) FROM assignments a
        WHERE a.is_lead AND a.due_date BETWEEN %(first)s AND %(last)s AND a.due_date < %(today)s
          AND ((a.signed_at IS NOT NULL AND (a.signed_at AT TIME ZONE 'Asia/Shanghai')::date > a.due_date)
               OR (a.signed_at IS NULL AND a.state IN ({OWED})))
        GROUP BY a.workspace_id""".replace("{OWED}", OWED),
    "urge_ignored": """
        SELECT e.workspace_id, count(*) FROM escalations e
        WHERE e.rung = 'urge' AND e.issued_on BETWEEN %(first)s AND %(last)s
          AND EXISTS (SELECT 1 FROM escalations n WHERE n.assignment_id = e.assignment_id
                      AND n.due_date = e.due_date AND n.issued_on <= %(today)s
                      AND ((n.rung = 'urge' AND n.ordinal > e.ordinal)
                           OR (n.rung = 'supervise' AND n.issued_on > e.issued_on)))
        GROUP BY e.workspace_id""",
    "supervise": """
        SELECT workspace_id, count(*) FROM escalations
        WHERE rung = 'supervise' AND issued_on BETWEEN %(first)s AND %(last)s GROUP BY workspace_id""",
    "transfer": """
        SELECT workspace_id, count(*) FROM escalations
        WHERE rung = 'transfer' AND issued_on BETWEEN %(first)s AND %(last)s GROUP BY workspace_id""",
    "quality": """
        SELECT workspace_id, count(*) FROM timeline_entries
        WHERE action = 'reopen' AND at >= %(start)s AND at < %(end)s GROUP BY workspace_id""",
    "invalid_return": """
        SELECT workspace_id, count(*) FROM timeline_entries
        WHERE action = 'return_rejected' AND at >= %(start)s AND at < %(end)s GROUP BY workspace_id""",
    "unsatisfied": """
        SELECT c.reply_unit_id, count(*) FROM ratings r JOIN cases c ON c.id = r.case_id
        WHERE r.score = 'unsatisfied' AND c.reply_unit_id IS NOT NULL
          AND r.created_at >= %(start)s AND r.created_at < %(end)s GROUP BY c.reply_unit_id""",
}


def _dsn() -> str:
    return get_engine().url.set(drivername="postgresql").render_as_string(hide_password=False)


def _raw(statements: list[tuple[str, dict[str, Any]]]) -> tuple[float, list[list[tuple[Any, ...]]]]:
    """Run hand-written statements in one read-only transaction as the app's role with the
    system context set (as the app's cross-workspace reads are): (ms, rows of each)."""
    with psycopg.connect(_dsn()) as conn:
        start = time.perf_counter()
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute("SELECT set_config('minpan.system', 'on', true)")
            found = [conn.execute(sql, params).fetchall() for sql, params in statements]  # type: ignore[arg-type]
        return (time.perf_counter() - start) * 1000, found


def dashboard_params(today: date) -> dict[str, Any]:
    from app.workflows.deadlines import add_working_days

    return {"today": today, "soon": add_working_days(today, 1)}


def raw_dashboard(today: date) -> tuple[float, dict[str, dict[str, dict[str, int]]]]:
    """(ms, {dimension | "total": {key: {status: n}}}) from the hand-written statement."""
    from app.supervision.queries import STATUSES

    ms, (rows,) = _raw([(RAW_DASHBOARD, dashboard_params(today))])
    out: dict[str, dict[str, dict[str, int]]] = {}
    names = ("unit", "category", "topic", "region", "board")
    for row in rows:
        g, keys, counts = row[0], row[1:6], dict(zip(STATUSES, row[6:], strict=True))
        if g == 31:
            out.setdefault("total", {})[""] = counts
            continue
        dim = next(d for d in names if DIMENSION_BITS[d] == g)
        key = keys[names.index(dim)]
        out.setdefault(dim, {})["" if key is None else str(key)] = counts
    return ms, out


def app_dashboard(today: date) -> dict[str, dict[str, dict[str, int]]]:
    from app.supervision import queries

    with system_session() as db:
        data = queries.dashboard(db, today)
    out: dict[str, dict[str, dict[str, int]]] = {"total": {"": data["totals"]}}
    for dim, rows in data["breakdowns"].items():
        out[dim] = {r.key: dict(r.counts) for r in rows}
    return out


def window(year: int, today: date) -> dict[str, Any]:
    from app.assessment.rules import Window

    w = Window(year, today)
    start, end = w.moments()
    return {"first": w.first, "last": w.last, "today": today, "start": start, "end": end}


def raw_assessment(year: int, today: date) -> tuple[float, dict[str, dict[int, int]]]:
    keys = list(RAW_ASSESSMENT)
    ms, found = _raw([(RAW_ASSESSMENT[k], window(year, today)) for k in keys])
    return ms, {k: {int(u): int(n) for u, n in rows} for k, rows in zip(keys, found, strict=True)}


def app_assessment(year: int, today: date) -> tuple[float, dict[str, dict[int, int]]]:
    """The full annual assessment as the app computes it (every unit, every rule): ms, counts."""
    from app.assessment import services
    from app.assessment.rules import RULES

    start = time.perf_counter()
    with system_session() as db:
        ranking = services.ranking(db, year, on=today)
    ms = (time.perf_counter() - start) * 1000
    counts = {
        r.key: {s.workspace_id: s.counts[r.key] for s in ranking.units if s.counts.get(r.key)} for r in RULES
    }
    return ms, counts


def session_cookie(username: str) -> str:
    """A session for ``username`` written as trusted code (no password, no second factor, no audit
    event: the bench is not testing sign-in): the cookie's token."""
    import secrets

    from sqlalchemy import select

    from app.accounts.models import User, UserSession
    from app.accounts.services import _session_key
    from app.tenants.models import Membership

    token = secrets.token_urlsafe(32)
    with system_session() as db:
        user = db.scalar(select(User).where(User.username == username))
        assert user is not None, username
        workspace = db.scalar(select(Membership.workspace_id).where(Membership.user_id == user.id))
        session = UserSession(
            id=_session_key(token), user_id=user.id, workspace_id=workspace, user_agent="bench"
        )
        db.add(session)
    return token


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30, help="dashboard requests (and SQL replays)")
    parser.add_argument("--assessments", type=int, default=5, help="annual assessments of each year")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the statements")
    parser.add_argument("--seed-only", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    seed(args.cases)
    if args.seed_only:
        return
    from app import migrate

    migrate.upgrade()  # a database seeded before a later migration
    today = TODAY
    with get_engine().connect() as conn:
        conn.execute(text("SELECT set_config('minpan.system', 'on', false)"))
        sizes = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()  # noqa: S608
            for t in ("cases", "assignments", "timeline_entries", "escalations", "ratings")
        }
    print("rows:", ", ".join(f"{t} {n:,}" for t, n in sizes.items()), flush=True)

    # 1. The same numbers: the app's functions against the hand-written statements.
    _, raw = raw_dashboard(today)
    mine = app_dashboard(today)
    for dim, rows in raw.items():
        assert {k: v for k, v in mine[dim].items() if any(v.values())} == rows, dim
    print(f"dashboard: {raw['total']['']}", flush=True)
    for year in (today.year, today.year - 1):
        _, raw_counts = raw_assessment(year, today)
        _, app_counts = app_assessment(year, today)
        assert {k: v for k, v in raw_counts.items()} == app_counts, year
        print(f"assessment {year}: " + ", ".join(f"{k} {sum(v.values()):,}" for k, v in app_counts.items()))

    if args.explain:
        from bench.bench_public import explain as explain_statement

        with captured() as statements:
            app_dashboard(today)
            app_assessment(today.year, today)
        for statement, parameters in statements:
            if statement.lstrip().upper().startswith(("SELECT", "WITH")) and "set_config" not in statement:
                plan = explain_statement(statement, parameters)
                took = plan.strip().splitlines()[-1]
                print(f"--- {took}\n{statement[:300]}\n{plan}\n", flush=True)

    # 2. The dashboard over HTTP, one request at a time, interleaved with its SQL alone and the
    #    hand-written statement.
    python = str(Path(sys.executable))
    minpan = [python, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--workers", "1"]
    cookie = session_cookie("dc.supervisor")
    with captured() as page_statements:
        app_dashboard(today)
    page_ms: list[float] = []
    sql_ms: list[float] = []
    raw_ms: list[float] = []
    with (
        serving(minpan, "bench-supervision-app") as url,
        httpx.Client(base_url=url, cookies={"minpan_session": cookie}, timeout=120) as client,
    ):
        first = client.get("/supervision")
        assert first.status_code == 200 and "办理情况" in first.text, (first.status_code, first.text[:300])
        print(f"/supervision: {len(first.content):,} bytes", flush=True)
        for run in range(args.runs + 2):
            start = time.perf_counter()
            response = client.get("/supervision")
            took = (time.perf_counter() - start) * 1000
            assert response.status_code == 200
            sql = replay(page_statements)
            bare, _ = raw_dashboard(today)
            if run >= 2:  # two warm-up rounds
                page_ms.append(took)
                sql_ms.append(sql)
                raw_ms.append(bare)
    # 3. The full annual assessment, interleaved with the hand-written statements.
    years: dict[int, tuple[list[float], list[float]]] = {}
    for year in (today.year, today.year - 1):
        years[year] = ([], [])
        for _ in range(args.assessments):
            years[year][0].append(app_assessment(year, today)[0])
            years[year][1].append(raw_assessment(year, today)[0])

    p50, p95 = _stats(page_ms)
    s50, s95 = _stats(sql_ms)
    r50, r95 = _stats(raw_ms)
    print("\n| what | p50 ms | p95 ms | page or app / hand-written SQL |")
    print("|---|---|---|---|")
    print(f"| /supervision over HTTP ({len(page_ms)} requests) | {p50:.1f} | {p95:.1f} | {p50 / r50:.2f}× |")
    print(
        f"| its {len(page_statements)} statements replayed alone | {s50:.1f} | {s95:.1f} | {s50 / r50:.2f}× |"
    )
    print(f"| hand-written statement, same counts | {r50:.1f} | {r95:.1f} | 1× |")
    for year, (app_runs, raw_runs) in years.items():
        a50, a95 = _stats(app_runs)
        b50, b95 = _stats(raw_runs)
        label = f"annual assessment {year}, all units ({len(app_runs)} runs)"
        print(f"| {label} | {a50:.1f} | {a95:.1f} | {a50 / b50:.2f}× |")
        print(f"| hand-written, 7 aggregates {year} | {b50:.1f} | {b95:.1f} | 1× |")


if __name__ == "__main__":
    main()
