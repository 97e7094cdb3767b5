"""The deadline sweep: 提醒单 → 催办单 → 督办单 on exactly the right working days, once each; and
the 移交函 a supervisor decides (第十三条, 第十九条, 第二十条).

Thresholds are the centre's (``EscalationPolicy``), by default: 提醒 on the working day before the
due date if the reply is not yet submitted; 催办 on the first overdue working day and again every
2 working days while nothing comes; 督办 after 3 overdue working days or after two 催办 without
result. 移交 is never automatic. Each rung is recorded once (a unique key), on the unit's timeline,
and notifies the unit's principal (主要负责同志, 第十三条) in the app and through the outbox.

The sweep is set-based so it stays fast with a million open assignments: one query decides, per
row that may need a rung, which rungs it gets today (``decisions``: ``plan`` in SQL); the rungs
are numbered under the counters' locks and recorded per unit as one batch (``EscalationBatch``);
each unit's fan-out job writes them as escalation rows with their timeline entries, notices,
audit event and documents (``fan_out``). Whoever decides from the escalation rows writes the
pending batches first (``expand``), so nothing is decided from a partial picture.
"""

from __future__ import annotations

import gc
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.calendar import days
from app.cases.models import Assignment, Case, TimelineEntry
from app.db import system_session, utcnow
from app.errors import Conflict, InvalidInput
from app.escalation.models import Escalation, EscalationBatch, EscalationPolicy, Notification
from app.notify.services import Notice, notify_many
from app.permissions import Role
from app.settings import get_settings
from app.tenants.models import Membership, Workspace, WorkspaceKind
from app.workflows.deadlines import publication_due
from app.workflows.effects import allocate_numbers, locked_counter

# The reply is still owed while the assignment is in one of these states.
OWED_STATES = (
    "pending",
    "handling",
    "awaiting_signoff",
    "return_drafted",
    "extension_requested",
    "extension_pending",
    "explanation_requested",
)

RUNGS = {
    "reminder": ("提醒单", "提醒", "第十三条"),
    "urge": ("催办单", "催办", "第十九条"),
    "supervise": ("督办单", "督办", "第十九条"),
    "transfer": ("移交函", "移交", "第二十条"),
}
RUNG_TITLES = {rung: title for rung, (title, _, _) in RUNGS.items()}
TRANSFER_ADDRESSEE = "通辽市纪委监委"


@dataclass(frozen=True)
class Thresholds:
    reminder_days_before: int = 1
    urge_after_days: int = 1
    urge_repeat_days: int = 2
    supervise_after_days: int = 3
    supervise_after_urges: int = 2

    # (field, Chinese label, lowest, highest) — the bounds the centre admin may set.
    FIELDS = (
        ("reminder_days_before", "提醒：到期前第几个工作日", 1, 3),
        ("urge_after_days", "催办：逾期第几个工作日", 1, 5),
        ("urge_repeat_days", "再次催办：每隔几个工作日（0 为不重复）", 0, 10),
        ("supervise_after_days", "督办：逾期满几个工作日", 1, 20),
        ("supervise_after_urges", "督办：催办几次仍无结果", 1, 10),
    )

    @classmethod
    def of(cls, policy: EscalationPolicy | None) -> Thresholds:
        if policy is None:
            return cls()
        return cls(**{name: getattr(policy, name) for name, *_ in cls.FIELDS})

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Thresholds:
        """Thresholds from a form; ``Invalid`` with every problem in Chinese."""
        values: dict[str, int] = {}
        problems: list[str] = []
        for name, label, low, high in cls.FIELDS:
            raw = str(data.get(name, "")).strip()
            if not raw.isdigit() or not low <= int(raw) <= high:
                problems.append(f"{label}：请填写 {low} 到 {high} 之间的整数。")
            else:
                values[name] = int(raw)
        if not problems and values["supervise_after_days"] < values["urge_after_days"]:
            problems.append("督办的逾期天数不能少于催办的逾期天数。")
        if problems:
            raise InvalidInput(" ".join(problems))
        return cls(**values)


@dataclass
class SweepResult:
    issued: dict[str, int] = field(default_factory=lambda: {rung: 0 for rung in RUNGS if rung != "transfer"})
    publication_overdue: int = 0
    workspaces: set[int] = field(default_factory=set)  # units given a rung (one fan-out job each)

    @property
    def total(self) -> int:
        return sum(self.issued.values())


def reminder_day(due: date, before: int = 1) -> date:
    calendar = days.current()
    day = due
    for _ in range(before):
        day = calendar.previous_working_day(day)
    return day


def overdue_days(today: date, due: date) -> int:
    """Working days past the due date (0 until it has passed)."""
    return max(0, -days.current().working_days_between(today, due)) if today > due else 0


def plan(
    today: date,
    due: date,
    t: Thresholds,
    *,
    reminders: int = 0,
    urges: int = 0,
    urges_without_result: int = 0,
    overdue: int | None = None,
) -> list[tuple[str, int]]:
    """The (rung, ordinal) to issue today for a reply due on ``due`` that is still owed and has not
    been supervised for this deadline; at most one 催办 per sweep."""
    if today <= due:
        return (
            [("reminder", 1)] if reminders == 0 and today >= reminder_day(due, t.reminder_days_before) else []
        )
    overdue = overdue_days(today, due) if overdue is None else overdue
    steps: list[tuple[str, int]] = []
    if overdue >= t.urge_after_days:
        wanted = 1 + ((overdue - t.urge_after_days) // t.urge_repeat_days if t.urge_repeat_days else 0)
        if wanted > urges:
            steps.append(("urge", urges + 1))
    fresh = len(steps)
    if overdue >= t.supervise_after_days or urges_without_result + fresh >= t.supervise_after_urges:
        steps.append(("supervise", 1))
    return steps


def rungs_due(today: date, due: date, t: Thresholds | None = None) -> list[str]:
    """Which rungs a reply due on ``due`` has reached on ``today`` (nothing issued before)."""
    t = t or Thresholds()
    if today <= due:
        return [r for r, _ in plan(today, due, t)]
    overdue = overdue_days(today, due)
    reached = ["urge"] if overdue >= t.urge_after_days else []
    return reached + (["supervise"] if overdue >= t.supervise_after_days else [])


def simulate(due: date, t: Thresholds, *, days_after: int = 20) -> list[tuple[date, str, int]]:
    """(day, rung, ordinal) a reply due on ``due`` that never comes would receive, sweeping daily."""
    issued: list[tuple[date, str, int]] = []
    day = min(due - timedelta(days=10), reminder_day(due, t.reminder_days_before))  # a holiday between
    while day <= due + timedelta(days=days_after):
        if days.current().is_working_day(day):
            rungs = [r for _, r, _ in issued]
            for rung, ordinal in plan(
                day,
                due,
                t,
                reminders=rungs.count("reminder"),
                urges=rungs.count("urge"),
                urges_without_result=rungs.count("urge"),
            ):
                issued.append((day, rung, ordinal))
            if "supervise" in (r for _, r, _ in issued):
                break
        day += timedelta(days=1)
    return issued


def example(t: Thresholds, due: date | None = None) -> str:
    """以 12月4日到期为例：12月3日 提醒单；12月7日 催办单；12月9日 催办单（第2次）、督办单"""
    from app.workflows.deadlines import add_working_days, local_date

    due = due or add_working_days(local_date(utcnow()), 5)
    by_day: dict[date, list[str]] = defaultdict(list)
    for day, rung, ordinal in simulate(due, t):
        by_day[day].append(RUNGS[rung][0] + (f"（第{ordinal}次）" if ordinal > 1 else ""))
    steps = "；".join(f"{d.month}月{d.day}日 {'、'.join(names)}" for d, names in by_day.items())
    return f"以 {due.month}月{due.day}日到期、始终未答复为例：{steps}。"


# --- the policy row: thresholds and the sweep's mutex ----------------------------------------------


def policy(db: Session) -> EscalationPolicy:
    row = db.get(EscalationPolicy, 1)
    if row is None:
        row = EscalationPolicy(id=1, **Thresholds().__dict__)
        db.add(row)
        db.flush()
    return row


def thresholds(db: Session) -> Thresholds:
    return Thresholds.of(db.get(EscalationPolicy, 1))


def set_thresholds(db: Session, t: Thresholds, *, actor_id: int, workspace_id: int | None) -> None:
    row = policy(db)
    before = Thresholds.of(row)
    for name, *_ in Thresholds.FIELDS:
        setattr(row, name, getattr(t, name))
    row.updated_at = utcnow()
    row.updated_by_id = actor_id
    from app.audit.services import record

    record(
        db,
        "escalation.policy",
        actor_id=actor_id,
        workspace_id=workspace_id,
        target="escalation_policy",
        before=before.__dict__,
        after=t.__dict__,
    )


def _lock(db: Session) -> Thresholds:
    """Take the sweep's lock (a write on the policy row, the transaction's first statement, so that
    SQLite takes its write lock before reading anything) and read the thresholds under it."""
    touch = update(EscalationPolicy).where(EscalationPolicy.id == 1).values(last_sweep_at=utcnow())
    if db.execute(touch).rowcount == 0:  # type: ignore[attr-defined]
        try:
            with db.begin_nested():
                db.add(EscalationPolicy(id=1, **Thresholds().__dict__))
        except IntegrityError:
            pass  # another sweep created it a moment ago
        db.execute(touch)
    return Thresholds.of(db.get(EscalationPolicy, 1))


# --- the sweep --------------------------------------------------------------------------------------


def _count(rung: str, *extra: ColumnElement[bool]) -> Any:
    return (
        select(func.count())
        .select_from(Escalation)
        .where(Escalation.assignment_id == Assignment.id, Escalation.rung == rung, *extra)
        .scalar_subquery()
    )


def due_rows_query(today: date, t: Thresholds) -> Any:
    """Owed lead assignments that may need a rung today: due by the end of the reminder window and
    not yet supervised for their current deadline (with the counts the plan needs)."""
    same_deadline = Escalation.due_date == Assignment.due_date
    return select(
        Assignment.id,
        Assignment.workspace_id,
        Assignment.case_id,
        Assignment.due_date,
        Assignment.sheet_number,
        Assignment.title,
        _count("reminder", same_deadline).label("reminders"),
        _count("urge", same_deadline).label("urges"),
        _count(
            "urge", or_(Assignment.signed_at.is_(None), Escalation.issued_at > Assignment.signed_at)
        ).label("urges_without_result"),
    ).where(
        *_on_ladder(today, t),
        ~exists().where(
            Escalation.assignment_id == Assignment.id, Escalation.rung == "supervise", same_deadline
        ),
    )


def sweep(today: date, *, fan_out_now: bool = False) -> SweepResult:
    """Issue every rung due on ``today``. Safe to run any number of times, concurrently too: the
    policy row is locked for the whole transaction, and the database refuses a second row for
    the same rung of the same deadline (unique ``(assignment_id, rung, due_date, ordinal)``).

    The sweep first writes the batches an earlier sweep left to fan-outs that have not run yet
    (``expand``: its decision reads the escalation rows), then decides and records the rungs
    (``issue_due``: one batch per unit, numbered) and queues, in the same transaction, one
    fan-out job per unit that writes the rest (escalation rows, timeline, notices, audit,
    documents, ``supervised_for``: ``fan_out``), run by the workers in parallel. ``fan_out_now``
    runs those jobs here after the commit instead (the command line, tests); the queued jobs then
    find nothing left to do."""
    result = SweepResult()
    with system_session() as db:
        t = _lock(db)
        expand(db)
        decided = issue_due(db, today, t)
        for counts in decided.values():
            for rung, n in counts.items():
                result.issued[rung] += n
        result.workspaces = set(decided)
        now = utcnow()
        from app.notify.services import enqueue_work

        for workspace_id in sorted(result.workspaces):
            enqueue_work(
                db,
                key=f"fanout:{workspace_id}:{now.isoformat()}",
                channel="fanout",
                recipient=str(workspace_id),
            )
        result.publication_overdue = _publication_overdue(db, today)
    if fan_out_now:
        for workspace_id in sorted(result.workspaces):
            fan_out(workspace_id)
    return result


def _key(assignment_id: int, rung: str, due: date, ordinal: int = 1) -> str:
    """The rung as text, ``12:urge:2026-12-04:2`` (``escalations.key``; document and notice keys)."""
    base = f"{assignment_id}:{rung}:{due.isoformat()}"
    return base if ordinal == 1 else f"{base}:{ordinal}"


def _parse_key(key: str) -> tuple[int, str, date, int] | None:
    """``_key``'s four values back, or None for text that is not such a key."""
    parts = key.split(":")
    if len(parts) not in (3, 4) or not parts[0].isdigit() or parts[1] not in RUNGS:
        return None
    if len(parts) == 4 and not parts[3].isdigit():
        return None
    try:
        due = date.fromisoformat(parts[2])
    except ValueError:
        return None
    return int(parts[0]), parts[1], due, int(parts[3]) if len(parts) == 4 else 1


def by_key(key: str) -> Any:
    """The WHERE clause that finds the rung ``key`` names (through the unique four values)."""
    parsed = _parse_key(key)
    if parsed is None:
        return Escalation.key == key  # not made by _key (nothing the app writes)
    assignment_id, rung, due, ordinal = parsed
    return and_(
        Escalation.assignment_id == assignment_id,
        Escalation.rung == rung,
        Escalation.due_date == due,
        Escalation.ordinal == ordinal,
    )


def _working_days_back(today: date, oldest: date) -> list[date]:
    """The working days up to ``today``, newest first, down to the first one on or before
    ``oldest``: a reply due on ``due < today`` is ``k`` working days overdue when
    ``days[k] <= due < days[k - 1]`` (``overdue_days``)."""
    calendar = days.current()
    found: list[date] = []
    day = today
    while not found or found[-1] > oldest:
        if calendar.is_working_day(day):
            found.append(day)
        day -= timedelta(days=1)
    return found


def _on_ladder(today: date, t: Thresholds) -> list[ColumnElement[bool]]:
    """Owed lead assignments due by the end of the reminder window and not yet supervised for
    their current deadline, as ix_assignments_ladder holds them (migration 0034)."""
    horizon = today
    while reminder_day(horizon + timedelta(days=1), t.reminder_days_before) <= today:
        horizon += timedelta(days=1)
    return [
        Assignment.state.in_(OWED_STATES),
        Assignment.is_lead.is_(True),
        Assignment.due_date <= horizon,
        Assignment.supervised_for.is_distinct_from(Assignment.due_date),
    ]


def decisions(today: date, t: Thresholds, oldest: date) -> Any:
    """``plan()`` in SQL over ``due_rows_query``: per due row, in assignment order, its
    assignment, unit, case and due date, and ``reminder`` (bool), ``urge`` (the 催办's ordinal,
    or NULL), ``supervise`` (bool) to issue today, for the rows that get a rung. A plain SELECT
    with the due rows' own WHERE, planned like the hand-written statement (in parallel where
    PostgreSQL sees fit; an INSERT … SELECT never is). ``oldest``: no due row is due before it
    (the overdue count of an older one is unknown here: such a row waits for the next sweep)."""
    due = due_rows_query(today, t).subquery("due")
    working = _working_days_back(today, oldest)
    # Working days overdue (0 on or before the due date), from the calendar, per due date.
    overdue = case(*((due.c.due_date >= day, n) for n, day in enumerate(working)), else_=null())
    computed = select(
        due.c.id,
        due.c.workspace_id,
        due.c.case_id,
        due.c.due_date,
        due.c.reminders,
        due.c.urges,
        due.c.urges_without_result,
        overdue.label("overdue"),
    )
    # OFFSET 0: kept a subquery (each count is computed once per row, not once per mention below),
    # planned exactly like the hand-written statement.
    rows = computed.offset(0).subquery("rows")
    late = and_(rows.c.due_date < today, rows.c.overdue.is_not(None))
    wanted: Any = literal(1)
    if t.urge_repeat_days:  # 1 + (overdue - urge_after_days) // urge_repeat_days
        wanted = 1 + (rows.c.overdue - t.urge_after_days) // t.urge_repeat_days
    urge = and_(late, rows.c.overdue >= t.urge_after_days, wanted > rows.c.urges)
    # 提醒: the reminder window has come (due_rows_query's horizon), none yet for this deadline.
    reminder = and_(rows.c.due_date >= today, rows.c.reminders == 0)
    supervise = and_(
        late,
        or_(
            rows.c.overdue >= t.supervise_after_days,
            rows.c.urges_without_result + case((urge, 1), else_=0) >= t.supervise_after_urges,
        ),
    )
    return (
        select(
            rows.c.id,
            rows.c.workspace_id,
            rows.c.case_id,
            rows.c.due_date,
            reminder.label("reminder"),
            case((urge, rows.c.urges + 1), else_=null()).label("urge"),
            supervise.label("supervise"),
        )
        .where(or_(reminder, urge, supervise))
        .order_by(rows.c.id)
    )  # the order the rungs are numbered in


class _Issued(NamedTuple):
    assignment_id: int
    workspace_id: int
    case_id: int
    due_date: date
    rung: str
    ordinal: int
    n: int  # its number in its series this year


# ONE statement from arrays on PostgreSQL (app.db.bulk_insert's way), with the key and the number
# written by the database: only the values that differ from rung to rung travel, in binary (%b).
_INSERT_FROM_ARRAYS = """
INSERT INTO escalations (workspace_id, key, assignment_id, case_id, rung, ordinal, number, due_date,
                         issued_on, issued_at, fanned_out_at, reason, addressee)
SELECT u.workspace_id,
       u.assignment_id || ':' || u.rung || ':' || to_char(u.due_date, 'YYYY-MM-DD')
           || CASE WHEN u.ordinal > 1 THEN ':' || u.ordinal ELSE '' END,
       u.assignment_id, u.case_id, u.rung, u.ordinal,
       CASE u.rung WHEN 'reminder' THEN %(reminder)s WHEN 'urge' THEN %(urge)s ELSE %(supervise)s END
           || u.n || '号',
       u.due_date, %(today)s, %(now)s, NULL, '', ''
  FROM unnest(%(a)b::integer[], %(w)b::integer[], %(c)b::integer[], %(d)b::date[], %(r)b::varchar[],
              %(o)b::integer[], %(n)b::integer[])
       AS u (assignment_id, workspace_id, case_id, due_date, rung, ordinal, n)
    ON CONFLICT (assignment_id, rung, due_date, ordinal) DO NOTHING
"""


@contextmanager
def _collector_paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def issue_due(db: Session, today: date, t: Thresholds) -> dict[int, Counter[str]]:
    """Decide and number every rung due today, in the caller's transaction: the decision is one
    SELECT (``decisions``), the numbers come from the counters (locked first), and the rungs are
    recorded as one batch per unit (``EscalationBatch``: 40 rows at 1,000,000 assignments, not
    16,000 with their indexes, key and trigger), for the unit's fan-out to write. Returns each
    unit's rungs by series. The caller has written the pending batches first (``expand``)."""
    oldest = db.scalar(select(func.min(Assignment.due_date)).where(*_on_ladder(today, t)))
    if oldest is None:
        return {}
    # The three series' counters, locked in a fixed order before anything is read: 督查室's 督办单
    # by hand (the same counter) either committed before the decision reads, or waits for us.
    counters = {rung: locked_counter(db, RUNGS[rung][1], today.year) for rung in RUNGS if rung != "transfer"}
    numbers = {rung: counter.value for rung, counter in counters.items()}
    units: dict[int, list[list[Any]]] = defaultdict(list)
    # In assignment order, each series numbered in it. All rows at once through the connection:
    # plain rows, none of the ORM's handling for 20,000 of them; and no pass of the cycle
    # collector over the whole process while they are made (0.1-0.2 s each with the app loaded,
    # measured; they hold no cycles).
    with _collector_paused():
        rows = db.connection().execute(decisions(today, t, oldest)).fetchall()
        for aid, unit, case_id, due, reminder, urge, supervise in rows:
            rungs, due = units[unit], due.isoformat()
            if reminder:
                numbers["reminder"] += 1
                rungs.append([aid, case_id, due, "reminder", 1, numbers["reminder"]])
            if urge is not None:
                numbers["urge"] += 1
                rungs.append([aid, case_id, due, "urge", urge, numbers["urge"]])
            if supervise:
                numbers["supervise"] += 1
                rungs.append([aid, case_id, due, "supervise", 1, numbers["supervise"]])
    decided: dict[int, Counter[str]] = {}
    for unit, rungs in sorted(units.items()):
        if rungs:
            decided[unit] = Counter(rung[3] for rung in rungs)
    if decided:
        for rung, counter in counters.items():
            counter.value = numbers[rung]
        now = utcnow()
        db.execute(
            insert(EscalationBatch),
            [
                {
                    "workspace_id": unit,
                    "issued_on": today,
                    "issued_at": now,
                    "rungs": json.dumps(units[unit]),
                }
                for unit in decided
            ],
        )
    return decided


def expand(db: Session, workspace_id: int | None = None) -> int:
    """Write the pending batches (of one unit, or of all) as escalation rows, in the caller's
    transaction, and delete them: ``DELETE … RETURNING`` claims them (a concurrent expansion of the
    same batch waits, then finds it gone). A rung whose row is already there is skipped (the
    unique rung). Returns how many rungs the batches held."""
    batches = cast(Table, EscalationBatch.__table__)
    claim = batches.delete().returning(
        batches.c.workspace_id, batches.c.issued_on, batches.c.issued_at, batches.c.rungs
    )
    if workspace_id is not None:
        claim = claim.where(batches.c.workspace_id == workspace_id)
    total = 0
    for unit, issued_on, issued_at, rungs in db.execute(claim).all():
        issued = [
            _Issued(aid, unit, case_id, date.fromisoformat(due), rung, ordinal, n)
            for aid, case_id, due, rung, ordinal, n in json.loads(rungs)
        ]
        _insert(db, issued, issued_on, issued_at)
        total += len(issued)
    return total


def _insert(db: Session, issued: Sequence[_Issued], today: date, now: datetime) -> None:
    series = {rung: f"{RUNGS[rung][1]}〔{today.year}〕" for rung in RUNGS}  # numbering()'s form
    if db.get_bind().dialect.name == "postgresql":
        # In assignment order: the unique index, the key and the assignments' key are walked once.
        columns = zip(*sorted(issued), strict=True)
        arrays = dict(zip("awcdron", (list(values) for values in columns), strict=True))
        params = {"today": today, "now": now, **{rung: series[rung] for rung in RUNGS if rung != "transfer"}}
        db.connection().exec_driver_sql(_INSERT_FROM_ARRAYS, params | arrays)
        return
    db.execute(  # SQLite: an ordinary executemany, the key and the number made here
        sqlite_insert(Escalation).on_conflict_do_nothing(
            index_elements=["assignment_id", "rung", "due_date", "ordinal"]
        ),
        [
            {
                "workspace_id": row.workspace_id,
                "key": _key(row.assignment_id, row.rung, row.due_date, row.ordinal),
                "assignment_id": row.assignment_id,
                "case_id": row.case_id,
                "rung": row.rung,
                "ordinal": row.ordinal,
                "number": f"{series[row.rung]}{row.n}号",
                "due_date": row.due_date,
                "issued_on": today,
                "issued_at": now,
            }
            for row in issued
        ],
    )


def _text(rung: str, number: str, sheet_number: str, title: str, due: date, ordinal: int = 1) -> str:
    name, _, article = RUNGS[rung]
    nth = f"（第{ordinal}次催办）" if rung == "urge" and ordinal > 1 else ""
    when = "将于" if rung == "reminder" else "已于"
    return (
        f"【{name}】{number}{nth}：承办单{sheet_number}《{title}》{when} {due.month}月{due.day}日到期，"
        f"请主要负责同志督促办理（{article}）。"
    )


def _people(db: Session, workspace_ids: Iterable[int], roles: Sequence[str]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = defaultdict(list)
    ids = set(workspace_ids)
    if not ids:
        return found
    for workspace_id, user_id in db.execute(
        select(Membership.workspace_id, Membership.user_id).where(
            Membership.workspace_id.in_(ids), Membership.role.in_(roles)
        )
    ):
        if user_id not in found[workspace_id]:
            found[workspace_id].append(user_id)
    return found


DIGEST_LINES = 30  # a principal's digest lists this many rungs, then says how many more


class _Rung(NamedTuple):
    id: int
    key: str
    assignment_id: int
    case_id: int
    rung: str
    ordinal: int
    number: str
    due_date: date
    sheet_number: str
    title: str


def fan_out(workspace_id: int) -> int:
    """Write what the unit's newly issued rungs imply, in one transaction: ``supervised_for`` of
    their 督办单's deadlines, a timeline entry per rung, one notice per principal (the rung's own
    when there is one, else a digest of all of them: a principal of a large unit is not sent 400
    e-mails and 400 SMS on a morning), one audit event, the notices' documents to render. Claims
    the rungs by marking them (an UPDATE … RETURNING: a concurrent fan-out of the same unit
    waits, then finds nothing), so each rung is fanned out once. Returns how many it handled."""
    now = utcnow()
    esc = cast(Table, Escalation.__table__)
    with system_session() as db:
        expand(db, workspace_id)  # the rungs the sweep decided for the unit, as escalation rows
        claimed = db.execute(
            esc.update()
            .where(
                esc.c.workspace_id == workspace_id,
                esc.c.fanned_out_at.is_(None),
                esc.c.rung != "transfer",
            )
            .values(fanned_out_at=now)
            .returning(
                esc.c.id,
                esc.c.assignment_id,
                esc.c.case_id,
                esc.c.rung,
                esc.c.ordinal,
                esc.c.number,
                esc.c.due_date,
            )
        ).all()
        if not claimed:
            return 0
        # The deadlines given a 督办单 leave the sweep's reading (ix_assignments_ladder, migration
        # 0034) — unless the due date has moved since. Written here, not by the sweep: the sweep's
        # NOT EXISTS is the truth, this only keeps its reading short, and the fan-out runs in
        # parallel, per unit, seconds after the sweep's commit.
        supervised = [row.id for row in claimed if row.rung == "supervise"]
        if supervised:
            assignments = cast(Table, Assignment.__table__)
            db.execute(
                assignments.update()
                .where(
                    assignments.c.id == esc.c.assignment_id,
                    esc.c.id.in_(supervised),
                    assignments.c.due_date == esc.c.due_date,
                    assignments.c.supervised_for.is_distinct_from(esc.c.due_date),
                )
                .values(supervised_for=esc.c.due_date)
            )
        sheets = {
            row.id: row
            for row in db.execute(
                select(Assignment.id, Assignment.sheet_number, Assignment.title).where(
                    Assignment.id.in_({row.assignment_id for row in claimed})
                )
            )
        }
        rows = [
            _Rung(
                row.id,
                _key(row.assignment_id, row.rung, row.due_date, row.ordinal),
                row.assignment_id,
                row.case_id,
                row.rung,
                row.ordinal,
                row.number,
                row.due_date,
                sheets[row.assignment_id].sheet_number,
                sheets[row.assignment_id].title,
            )
            for row in sorted(claimed, key=lambda r: r.id)
        ]
        unit = db.get(Workspace, workspace_id)
        unit_name = unit.short_name if unit else ""
        texts = {
            row.id: _text(row.rung, row.number, row.sheet_number, row.title, row.due_date, row.ordinal)
            for row in rows
        }
        db.execute(
            insert(TimelineEntry),
            [
                {
                    "workspace_id": workspace_id,
                    "case_id": row.case_id,
                    "assignment_id": row.assignment_id,
                    "at": now,
                    "actor_name": "系统",
                    "workspace_name": unit_name,
                    "action": row.rung,
                    "comment": texts[row.id],
                }
                for row in rows
            ],
        )
        principals = _people(db, [workspace_id], (Role.PRINCIPAL.value,)).get(workspace_id, [])
        notify_many(db, [_notice(workspace_id, user_id, rows, texts) for user_id in principals])
        from app.audit.services import record

        counts = {rung: sum(1 for row in rows if row.rung == rung) for rung in RUNGS}
        record(
            db,
            "escalation.issued",
            actor_id=None,
            workspace_id=workspace_id,
            target=f"workspace:{workspace_id}",
            counts={rung: n for rung, n in counts.items() if n},
            numbers=[row.number for row in rows],
        )
        from app.documents.queue import queue_many

        queue_many(db, [("escalation_notice", f"escalation-key:{row.key}") for row in rows])
    return len(rows)


def _notice(workspace_id: int, user_id: int, rows: Sequence[Any], texts: dict[int, str]) -> Notice:
    if len(rows) == 1:
        row = rows[0]
        return Notice(
            workspace_id=workspace_id,
            user_id=user_id,
            key=f"{row.key}:{user_id}",
            subject=f"【{RUNGS[row.rung][0]}】{row.number}",
            text=texts[row.id],
            link=f"/inbox/{row.assignment_id}",
        )
    counts = "、".join(
        f"{title}{n}件"
        for rung, title in RUNG_TITLES.items()
        if (n := sum(1 for row in rows if row.rung == rung))
    )
    lines = [texts[row.id] for row in rows[:DIGEST_LINES]]
    if len(rows) > DIGEST_LINES:
        lines.append(f"……另有{len(rows) - DIGEST_LINES}件，请在“待办事项”中查看。")
    return Notice(
        workspace_id=workspace_id,
        user_id=user_id,
        key=f"digest:{rows[0].id}:{user_id}",
        subject=f"【督办事项汇总】{counts}",
        text=f"【督办事项汇总】本次共{len(rows)}件：{counts}。\n" + "\n".join(lines),
        link="/inbox",
    )


def fan_out_pending() -> int:
    """Fan out every unit's pending rungs here and now (what the queued jobs do)."""
    with system_session() as db:
        workspaces = set(
            db.scalars(
                select(Escalation.workspace_id)
                .where(Escalation.fanned_out_at.is_(None), Escalation.rung != "transfer")
                .distinct()
            )
        ) | set(db.scalars(select(EscalationBatch.workspace_id).distinct()))
    return sum(fan_out(workspace_id) for workspace_id in sorted(workspaces))


# --- the centre's own deadline: publish on the day the reply is accepted (第十二条) --------------------


def _publication_overdue(db: Session, today: date) -> int:
    """Tell the centre's reviewers, once per accepted reply, that it is past its publication day."""
    zone = ZoneInfo(get_settings().timezone)
    start_of_today = datetime.combine(today, time.min, tzinfo=zone).astimezone(UTC)
    late = [
        (case_id, workspace_id, title, due)
        for case_id, workspace_id, title, delivered, flagged in db.execute(
            select(
                Case.id, Case.workspace_id, Case.title, Case.reply_submitted_at, Case.publication_flagged_for
            ).where(Case.state == "under_review", Case.reply_submitted_at < start_of_today)
        )
        if delivered is not None and today > (due := publication_due(delivered)) and flagged != due
    ]
    if not late:
        return 0
    reviewers = _people(db, {w for _, w, _, _ in late}, (Role.CENTRE_REVIEWER.value,))
    now = utcnow()
    timeline: list[dict[str, Any]] = []
    notices: list[Notice] = []
    for case_id, workspace_id, title, due in late:
        text = (
            f"【发布逾期】《{title}》的回复意见应于 {due.month}月{due.day}日公开答复，"
            "至今尚未发布（第十二条）。"
        )
        timeline.append(
            {
                "workspace_id": workspace_id,
                "case_id": case_id,
                "assignment_id": None,
                "at": now,
                "actor_name": "系统",
                "workspace_name": "",
                "action": "publication_overdue",
                "comment": text,
            }
        )
        notices.extend(
            Notice(
                workspace_id=workspace_id,
                user_id=user_id,
                key=f"publish:{case_id}:{due.isoformat()}:{user_id}",
                subject="【发布逾期】",
                text=text,
                link=f"/cases/{case_id}",
            )
            for user_id in reviewers.get(workspace_id, ())
        )
    db.execute(insert(TimelineEntry), timeline)
    cases = cast(Table, Case.__table__)
    for case_id, _, _, due in late:  # a plain UPDATE: the sweep does not bump the case's version
        db.execute(cases.update().where(cases.c.id == case_id).values(publication_flagged_for=due))
    notify_many(db, notices)
    return len(late)


# --- 督查室's decisions with a written reason: 移交函 (第二十条) and 督办单 by hand (第十九条) -------


def _written_reason(reason: str, what: str, too_short: str) -> str:
    reason = reason.strip()
    if len(reason) < 10:
        raise InvalidInput(too_short, field="reason")
    if len(reason) > 2000:
        raise InvalidInput(f"{what}理由不能超过2000字。", field="reason")
    return reason


def _lead_of(db: Session, case_id: int, assignment_id: int) -> Assignment:
    assignment = db.get(Assignment, assignment_id)
    if assignment is None or assignment.case_id != case_id or not assignment.is_lead:
        raise InvalidInput("请选择本件留言的牵头承办单位。")
    return assignment


def _record_decision(
    db: Session,
    assignment: Assignment,
    unit: Workspace | None,
    *,
    rung: str,
    key: str,
    number: str,
    reason: str,
    text: str,
    actor_id: int,
    actor_name: str,
    today: date,
    addressee: str = "",
) -> Escalation:
    """The decision's escalation row and its timeline entry. Its notices are written by the
    caller in the same transaction, so the row is marked as fanned out already."""
    now = utcnow()
    escalation = Escalation(
        workspace_id=assignment.workspace_id,
        key=key,
        assignment_id=assignment.id,
        case_id=assignment.case_id,
        rung=rung,
        number=number,
        due_date=assignment.due_date,
        issued_on=today,
        issued_at=now,
        decided_by_id=actor_id,
        reason=reason,
        addressee=addressee,
        fanned_out_at=now,
    )
    db.add(escalation)
    db.add(
        TimelineEntry(
            workspace_id=assignment.workspace_id,
            case_id=assignment.case_id,
            assignment_id=assignment.id,
            at=now,
            actor_id=actor_id,
            actor_name=actor_name,
            workspace_name=unit.short_name if unit else "",
            action=rung,
            comment=text,
        )
    )
    return escalation


def _principal_notices(
    db: Session, assignment: Assignment, key: str, subject: str, text: str
) -> list[Notice]:
    unit_id = assignment.workspace_id
    principals = _people(db, [unit_id], (Role.PRINCIPAL.value,)).get(unit_id, [])
    return [
        Notice(unit_id, user, f"{key}:{user}", subject, text, f"/inbox/{assignment.id}")
        for user in principals
    ]


def transfer(
    db: Session, *, case_id: int, assignment_id: int, reason: str, actor_id: int, today: date
) -> Escalation:
    """移交 a unit's assignment to 纪检监察 (copied to 督查室). Called inside a cross-workspace block
    by the supervision office; once per deadline."""
    reason = _written_reason(
        reason, "移交", "请写明移交理由（不少于10个字），说明“催办”“督办”无果的情况和造成的后果（第二十条）。"
    )
    assignment = _lead_of(db, case_id, assignment_id)
    key = _key(assignment.id, "transfer", assignment.due_date)
    # Numbered first, as supervise(): a second supervisor waits on the counter's row lock, then
    # sees this 移交 and is refused (the unique rung would refuse the row in any case).
    number = allocate_numbers(db, RUNGS["transfer"][1], today.year, 1)[0]
    if db.scalar(select(Escalation.id).where(by_key(key))) is not None:
        raise Conflict("该承办单位的这件留言已经移交纪检监察机关，不能重复移交。")
    unit = db.get(Workspace, assignment.workspace_id)
    text = (
        f"【移交函】{number}：承办单{assignment.sheet_number}《{assignment.title}》经督办无果，"
        f"{unit.name if unit else ''}的办理情况移交{TRANSFER_ADDRESSEE}，"
        f"抄送市政府督查室（第二十条）。理由：{reason}"
    )
    escalation = _record_decision(
        db,
        assignment,
        unit,
        rung="transfer",
        key=key,
        number=number,
        reason=reason,
        text=text,
        actor_id=actor_id,
        actor_name="市政府督查室",
        today=today,
        addressee=TRANSFER_ADDRESSEE,
    )
    subject = f"【移交函】{number}"
    notices = _principal_notices(db, assignment, key, subject, text)
    supervisors = db.scalars(
        select(Workspace.id).where(Workspace.kind == WorkspaceKind.SUPERVISOR.value)
    ).all()
    for workspace_id, users in _people(
        db, supervisors, (Role.SUPERVISOR.value, Role.CITY_LEADER.value)
    ).items():
        notices.extend(
            Notice(workspace_id, user_id, f"{key}:{user_id}", subject, text, f"/oversight/{case_id}")
            for user_id in users
        )
    db.flush()
    notify_many(db, notices)
    from app.audit.services import record

    record(
        db,
        "escalation.transfer",
        actor_id=actor_id,
        workspace_id=assignment.workspace_id,
        target=f"assignment:{assignment.id}",
        number=number,
    )
    from app.documents.queue import queue

    queue(db, "escalation_notice", f"escalation-key:{key}")
    # The evidence pack (第二十条): the case file with every document, signature and step, as of now.
    queue(db, "case_file", f"case:{case_id}", key)
    db.flush()  # inside the caller's cross-workspace block
    return escalation


def supervise(
    db: Session, *, case_id: int, assignment_id: int, reason: str, actor_id: int, actor_name: str, today: date
) -> Escalation:
    """A 督办单 that 督查室 issues by hand to a lead unit, from the quality list: the same rung as
    the sweep's (numbered 督办〔YYYY〕N号 from the same counter, key ``{assignment}:supervise:{due}``,
    so once per deadline whoever issues it, and the sweep then leaves the deadline alone), with the
    supervisor's reason. Writes its escalation row, timeline entry, the principal's notice (and
    outbox), the audit event and queues the notice's PDF in the caller's transaction. Called inside
    a cross-workspace block; the caller has checked the case is still owed."""
    reason = _written_reason(
        reason, "督办", "请写明督办理由（不少于10个字），说明需要督办的问题（第十九条）。"
    )
    assignment = _lead_of(db, case_id, assignment_id)
    key = _key(assignment.id, "supervise", assignment.due_date)
    done = select(Escalation.id).where(
        Escalation.assignment_id == assignment.id,
        Escalation.rung == "supervise",
        Escalation.due_date == assignment.due_date,  # as the sweep's due_rows_query: once per deadline
    )
    # Numbered first: the counter's row lock makes a second supervisor (or the sweep) wait for this
    # transaction, and then see its 督办 (READ COMMITTED) and be refused; the number rolls back too.
    number = allocate_numbers(db, RUNGS["supervise"][1], today.year, 1)[0]
    expand(db, assignment.workspace_id)  # a sweep's 督办单 for it may not be fanned out yet
    if db.scalar(done.limit(1)) is not None:
        raise Conflict("该承办单位的这件留言在本办理期限内已经督办，不能重复督办。")
    due = assignment.due_date
    text = (
        f"【督办单】{number}：承办单{assignment.sheet_number}《{assignment.title}》"
        f"办理期限 {due.month}月{due.day}日，市政府督查室决定督办，"
        f"请主要负责同志亲自过问、抓紧办理（第十九条）。理由：{reason}"
    )
    escalation = _record_decision(
        db,
        assignment,
        db.get(Workspace, assignment.workspace_id),
        rung="supervise",
        key=key,
        number=number,
        reason=reason,
        text=text,
        actor_id=actor_id,
        actor_name=actor_name or "市政府督查室",
        today=today,
    )
    assignments = cast(Table, Assignment.__table__)
    # The sweep leaves this deadline alone from now on (migration 0019).
    db.execute(
        assignments.update()
        .where(assignments.c.id == assignment.id)
        .values(supervised_for=assignment.due_date)
    )
    db.flush()
    notify_many(db, _principal_notices(db, assignment, key, f"【督办单】{number}", text))
    from app.audit.services import record

    record(
        db,
        "escalation.supervise",
        actor_id=actor_id,
        workspace_id=assignment.workspace_id,
        target=f"assignment:{assignment.id}",
        number=number,
        manual=True,
    )
    from app.documents.queue import queue

    queue(db, "escalation_notice", f"escalation-key:{key}")
    db.flush()
    return escalation


# --- reading ------------------------------------------------------------------------------------------


def _ladder(where: Any) -> Any:
    """Rungs in the order they were issued; those of one sweep up the ladder (提醒 → 催办 → 督办 →
    移交), a 2nd 催办 before the 督办 it led to."""
    rank = case({rung: i for i, rung in enumerate(RUNGS)}, value=Escalation.rung, else_=len(RUNGS))
    order = (Escalation.issued_at, rank, Escalation.ordinal, Escalation.id)
    return select(Escalation).where(where).order_by(*order)


def of_assignment(db: Session, assignment: Assignment) -> list[Escalation]:
    return list(db.scalars(_ladder(Escalation.assignment_id == assignment.id)))


def of_case(db: Session, case_id: int) -> list[Escalation]:
    return list(db.scalars(_ladder(Escalation.case_id == case_id)))


def unread_count(db: Session, user_id: int) -> int:
    return (
        db.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


def notifications(db: Session, user_id: int, limit: int = 100) -> list[Notification]:
    return list(
        db.scalars(
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.created_at.desc())
            .limit(limit)
        )
    )


def mark_all_read(db: Session, user_id: int) -> None:
    db.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
