"""统计分析 (第六条): the centre's statistics for a period, and a unit's own.

The period is the cases' **registration date** in Tongliao's time (as the ledger), start and end
included. ``unit_id`` restricts everything to one unit's work: the cases it was given (lead or
co-unit), its own lead assignments for response times, its own returns and extensions, the ratings
of the replies it gave. The caller decides the unit (a unit's staff: always their own workspace).

- response time: working days from the lead assignment's dispatch to the principal's signature
  of the reply delivered (``Assignment.signed_at``, state 已报送/已办结), on the official calendar;
- on time: delivered on or before the due date (extensions included); late: delivered after it,
  or still owed and past it; on-time rate = on time / (on time + late);
- returns: 退办 decided by the centre — valid (同意, ``return_accepted``), invalid (不同意,
  ``return_rejected``); extensions: approved (``extension_approved``);
- satisfaction (第十八条): only if the ratings table exists (``app.public.models.Rating``);
- hot topics: the character bigrams found in most messages' titles and texts, without stopwords.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from app.calendar import days
from app.cases.models import Assignment, Case, TimelineEntry
from app.cases.vocab import CATEGORIES
from app.errors import InvalidInput
from app.escalation.services import OWED_STATES
from app.settings import get_settings
from app.tenants.scope import cross_workspace
from app.workflows.deadlines import local_date

MAX_PERIOD_DAYS: Final = 5 * 366
REPLIED_STATES: Final = ("submitted", "closed")
HOT_TERMS: Final = 10
HOT_SAMPLE: Final = 5000  # the newest messages of the period read for hot topics
BLANK: Final = "（未填）"
# Characters that make a bigram a function word, and bigrams every message has.
_STOP_CHARS: Final = set("的了是在我你他她它们这那有和与及或吗呢吧啊么什怎为也都就还又很请问对被把给从到着")
_STOP_BIGRAMS: Final = {
    "您好", "网民", "朋友", "领导", "市长", "希望", "问题", "反映", "感谢", "谢谢", "通辽", "辽市",
    "现在", "目前", "能否", "可以", "如何", "是否", "一下", "没有", "已经", "相关", "情况", "部门",
}  # fmt: skip
_CJK: Final = re.compile(r"[\u4e00-\u9fff]+")


def parse_period(params: Any, today: date) -> tuple[date, date]:
    """start/end from the form (default: this month so far); ``InvalidInput`` in Chinese."""
    raw_start, raw_end = (str(params.get(k) or "").strip() for k in ("start", "end"))
    try:
        start = date.fromisoformat(raw_start) if raw_start else today.replace(day=1)
        end = date.fromisoformat(raw_end) if raw_end else today
    except ValueError:
        raise InvalidInput("请按 年-月-日 填写起止日期，例如 2026-11-01。", field="start") from None
    if start > end:
        raise InvalidInput("开始日期不能晚于结束日期。", field="start")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise InvalidInput("一次最多统计五年。", field="end")
    return start, end


@dataclass
class PeriodStats:
    start: date
    end: date
    unit_id: int | None
    volume: int = 0
    declined: int = 0
    dispatched: int = 0
    by_category: list[tuple[str, str, int]] = field(default_factory=list)
    by_topic: list[tuple[str, str, int]] = field(default_factory=list)
    by_region: list[tuple[str, str, int]] = field(default_factory=list)
    replied: int = 0
    median_days: float | None = None
    average_days: float | None = None
    on_time: int = 0
    late: int = 0
    returns_valid: int = 0
    returns_invalid: int = 0
    extensions: int = 0
    ratings: dict[str, int] | None = None
    hot_terms: list[tuple[str, int]] = field(default_factory=list)

    @property
    def on_time_rate(self) -> float | None:
        judged = self.on_time + self.late
        return round(100 * self.on_time / judged, 1) if judged else None

    @property
    def satisfaction_rate(self) -> float | None:
        if not self.ratings:
            return None
        rated = sum(self.ratings.values())
        good = self.ratings.get("satisfied", 0) + self.ratings.get("basic", 0)
        return round(100 * good / rated, 1) if rated else None


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(get_settings().timezone)
    low = datetime.combine(start, time.min, tzinfo=zone).astimezone(UTC)
    high = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return low, high


def _case_filter(start: date, end: date, unit_id: int | None) -> list[ColumnElement[bool]]:
    low, high = _bounds(start, end)
    found: list[ColumnElement[bool]] = [Case.registered_at >= low, Case.registered_at < high]
    if unit_id is not None:
        found.append(Case.id.in_(select(Assignment.case_id).where(Assignment.workspace_id == unit_id)))
    return found


def _grouped(db: Session, column: Any, where: list[ColumnElement[bool]]) -> list[tuple[str, str, int]]:
    rows = db.execute(select(column, func.count()).where(*where).group_by(column)).all()
    labelled = [
        (str(key or ""), CATEGORIES.get(key, key) if column is Case.category else (key or BLANK), int(n))
        for key, n in rows
    ]
    return sorted(labelled, key=lambda r: (-r[2], r[1]))


def period_stats(db: Session, start: date, end: date, today: date, unit_id: int | None = None) -> PeriodStats:
    """Every figure of the period (for one unit if ``unit_id``)."""
    stats = PeriodStats(start=start, end=end, unit_id=unit_id)
    where = _case_filter(start, end, unit_id)
    with cross_workspace(db):
        row = db.execute(
            select(
                func.count(),
                func.sum(case((Case.state == "declined", 1), else_=0)),
                func.sum(case((Case.dispatched_at.is_not(None), 1), else_=0)),
            ).where(*where)
        ).one()
        stats.volume, stats.declined, stats.dispatched = (int(v or 0) for v in row)
        stats.by_category = _grouped(db, Case.category, where)
        stats.by_topic = _grouped(db, Case.topic, where)
        stats.by_region = _grouped(db, Case.region, where)
        _response_times(db, stats, where, today)
        _decisions(db, stats, where)
        stats.ratings = _ratings(db, where, unit_id)
        stats.hot_terms = _hot_terms(db, where)
    return stats


def _lead(where: list[ColumnElement[bool]], unit_id: int | None) -> list[ColumnElement[bool]]:
    found = [*where, Assignment.is_lead.is_(True)]
    if unit_id is not None:
        found.append(Assignment.workspace_id == unit_id)
    return found


def working_days(dispatched: datetime, signed: datetime) -> int:
    return days.current().working_days_between(local_date(dispatched), local_date(signed))


def _response_times(db: Session, stats: PeriodStats, where: list[ColumnElement[bool]], today: date) -> None:
    rows = db.execute(
        select(Assignment.dispatched_at, Assignment.signed_at, Assignment.due_date, Assignment.state)
        .join(Case, Case.id == Assignment.case_id)
        .where(*_lead(where, stats.unit_id))
    ).all()
    spans = []
    for dispatched, signed, due, state in rows:
        if state in REPLIED_STATES and signed is not None:
            spans.append(working_days(dispatched, signed))
            if local_date(signed) <= due:
                stats.on_time += 1
            else:
                stats.late += 1
        elif state in OWED_STATES and due < today:
            stats.late += 1
    stats.replied = len(spans)
    if spans:
        stats.median_days = float(statistics.median(spans))
        stats.average_days = round(statistics.fmean(spans), 1)


def _decisions(db: Session, stats: PeriodStats, where: list[ColumnElement[bool]]) -> None:
    actions = {
        "return_accepted": "returns_valid",
        "return_rejected": "returns_invalid",
        "extension_approved": "extensions",
    }
    query = (
        select(TimelineEntry.action, func.count())
        .join(Assignment, Assignment.id == TimelineEntry.assignment_id)
        .join(Case, Case.id == Assignment.case_id)
        .where(*where, TimelineEntry.action.in_(actions))
        .group_by(TimelineEntry.action)
    )
    if stats.unit_id is not None:
        query = query.where(Assignment.workspace_id == stats.unit_id)
    for action, n in db.execute(query):
        setattr(stats, actions[action], int(n))


def _ratings(db: Session, where: list[ColumnElement[bool]], unit_id: int | None) -> dict[str, int] | None:
    try:  # 满意率回访 is another feature's table; without it there is no satisfaction figure
        from app.public.models import Rating  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    query = select(Rating.score, func.count()).join(Case, Case.id == Rating.case_id).where(*where)
    if unit_id is not None:
        query = query.where(Case.reply_unit_id == unit_id)
    return {str(score): int(n) for score, n in db.execute(query.group_by(Rating.score))}


def bigrams(text: str) -> set[str]:
    """The distinct Chinese character bigrams of a text, without stopwords."""
    found = set()
    for run in _CJK.findall(text):
        for i in range(len(run) - 1):
            pair = run[i : i + 2]
            if pair not in _STOP_BIGRAMS and not (set(pair) & _STOP_CHARS):
                found.add(pair)
    return found


def hot_terms(texts: list[str], limit: int = HOT_TERMS) -> list[tuple[str, int]]:
    """The bigrams found in the most messages (each message counts once), ties by the term."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(bigrams(text))
    ranked = sorted(((term, n) for term, n in counts.items() if n >= 2), key=lambda t: (-t[1], t[0]))
    return ranked[:limit]


def _hot_terms(db: Session, where: list[ColumnElement[bool]]) -> list[tuple[str, int]]:
    rows = db.execute(
        select(Case.title, Case.body).where(*where).order_by(Case.registered_at.desc()).limit(HOT_SAMPLE)
    ).all()
    return hot_terms([f"{title} {body}" for title, body in rows])
