"""Every read of the public portal, and the only one: public columns, masked text, read-only.

Cases live in the centre's workspace; a visitor has none. This module opens its own session with
the system context (the visitor's own session, if any, is never used), read-only on PostgreSQL
and rolled back on both, and selects named public columns only — never the citizen's name, phone
or e-mail, instructions, drafts, timeline comments or signatures. It hands the templates frozen
dataclasses whose text has gone through :func:`app.public.masking.mask`, never ORM objects.

Lists and search read the public index (``public_entries``; on PostgreSQL search reads the narrow
table ``public_terms``, migration 0020) and check on every row they return, by the case's primary
key, that the case is still public — a correlated subquery, not a join: row-level security on
``cases`` hides a join's size from the planner, which then starts from the cases. Counts stop at
:data:`COUNT_CAP` (the page says “超过 1000 条” and pages through the first 1,000). A reply page
reads the case itself, in one statement built once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Session

from app.cases.models import Case, TimelineEntry
from app.cases.vocab import CATEGORIES, DECLINE_REASONS
from app.db import session_factory, utcnow
from app.public import search
from app.public.masking import mask
from app.public.models import PublicEntry
from app.public.visibility import (
    EXPLANATION_NOTE,
    PRIVATE_REPLY_NOTE,
    WITHHELD_BODY,
    WITHHELD_REASONS,
    WITHHELD_TITLE,
    is_public,
    is_public_declined,
    is_public_reply,
)
from app.settings import get_settings
from app.tenants.models import Workspace
from app.tenants.scope import TenantContext, bind_tenant

PAGE_SIZE: Final = 20
# Counts stop here: “超过 1000 条”, and the pages go as far as the first 1,000.
COUNT_CAP: Final = 1000
# The public reader's sort memory on PostgreSQL: a common word's bitmap stays exact.
WORK_MEM: Final = "32MB"
# Part of every ETag: bump when the reply page's template or the masking rules change.
RENDER_VERSION: Final = "1"


@contextmanager
def reader() -> Iterator[Session]:
    """A session for public reads: system context, read-only transaction, always rolled back."""
    session = session_factory()()
    bind_tenant(session, TenantContext.system_context())
    try:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"postgresql_readonly": True})
            session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        yield session
    finally:
        session.rollback()
        session.close()


def _tz() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


# --- filters ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The list filters, exactly as they appear in the URL (?unit=education&month=2026-11 …)."""

    unit: str = ""  # workspace slug of the answering unit
    category: str = ""
    topic: str = ""
    region: str = ""
    month: str = ""  # YYYY-MM of the publication, Asia/Shanghai
    q: str = ""

    @classmethod
    def parse(cls, **raw: str | None) -> Filters:
        values = {
            k: " ".join((raw.get(k) or "").split())[:60] for k in ("unit", "category", "topic", "region", "q")
        }
        if values["category"] not in CATEGORIES:
            values["category"] = ""
        return cls(month=_valid_month(raw.get("month") or ""), **values)

    def url(self, path: str, page: int = 1, **changes: str) -> str:
        params = {k: v for k, v in asdict(replace(self, **changes)).items() if v}
        if page > 1:
            params["page"] = str(page)
        return path + ("?" + urlencode(params) if params else "")

    @property
    def active(self) -> bool:
        return any((self.unit, self.category, self.topic, self.region, self.month))


def _valid_month(value: str) -> str:
    try:
        parsed = datetime.strptime(value.strip(), "%Y-%m")
    except ValueError:
        return ""
    return parsed.strftime("%Y-%m") if 2000 <= parsed.year <= 2100 else ""


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    year, mon = (int(x) for x in month.split("-"))
    start = datetime(year, mon, 1, tzinfo=_tz())
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=_tz())
    return start.astimezone(UTC), end.astimezone(UTC)


def _unit_id(slug: str) -> Any:
    return select(Workspace.id).where(Workspace.slug == slug).scalar_subquery()


def _filtered(stmt: Select[Any], filters: Filters) -> Select[Any]:
    if filters.unit:
        stmt = stmt.where(PublicEntry.unit_id == _unit_id(filters.unit))
    if filters.category:
        stmt = stmt.where(PublicEntry.category == filters.category)
    if filters.topic:
        stmt = stmt.where(PublicEntry.topic == filters.topic)
    if filters.region:
        stmt = stmt.where(PublicEntry.region == filters.region)
    if filters.month:
        start, end = _month_bounds(filters.month)
        stmt = stmt.where(PublicEntry.published_at >= start, PublicEntry.published_at < end)
    return stmt


def _still_public(kind: str, case_id: Any = PublicEntry.case_id, entry_kind: Any = PublicEntry.kind) -> Any:
    """The index row's case is still public (of ``kind``): checked per row on the case's key."""
    if kind == "reply":
        condition, wanted = is_public_reply(), entry_kind == "reply"
    elif kind == "declined":
        condition, wanted = is_public_declined(), entry_kind == "declined"
    else:
        condition, wanted = is_public(), None
    # OFFSET 0 keeps PostgreSQL from turning the EXISTS into a semi-join (which would start from
    # the cases again): it stays a per-row probe of the cases' primary key.
    check = exists(
        select(literal_column("1")).select_from(Case).where(Case.id == case_id, condition).offset(0)
    )
    return check if wanted is None else wanted & check


# --- lists and search ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListItem:
    case_id: int
    kind: str
    title: str
    unit_name: str
    category: str
    topic: str
    region: str
    posted_at: datetime
    published_at: datetime
    title_html: Markup  # the title, escaped, with the search's hits marked
    excerpt: Markup
    reason: str  # a declined message's 第五条 reason; "" for a reply

    @property
    def url(self) -> str:
        return f"/replies/{self.case_id}" if self.kind == "reply" else f"/declined/{self.case_id}"

    @property
    def category_label(self) -> str:
        return CATEGORIES.get(self.category, self.category)


@dataclass(frozen=True)
class ResultPage:
    items: list[ListItem]
    total: int  # at most COUNT_CAP + 1: more than COUNT_CAP shows as “超过 1000 条”
    page: int
    pages: int

    @property
    def capped(self) -> bool:
        return self.total > COUNT_CAP

    @property
    def cap(self) -> int:
        return COUNT_CAP

    def numbers(self) -> list[int | None]:
        """Page numbers to link, None for a gap: 1 … 4 5 [6] 7 8 … 20."""
        wanted = {1, self.pages, *range(self.page - 2, self.page + 3)}
        shown = sorted(n for n in wanted if 1 <= n <= self.pages)
        out: list[int | None] = []
        for n in shown:
            if out and n - (out[-1] or 0) > 1:
                out.append(None)
            out.append(n)
        return out


_LIST_COLUMNS: Final = (
    PublicEntry.case_id,
    PublicEntry.kind,
    PublicEntry.title,
    PublicEntry.body,
    PublicEntry.answer,
    PublicEntry.category,
    PublicEntry.topic,
    PublicEntry.region,
    PublicEntry.posted_at,
    PublicEntry.published_at,
    Workspace.short_name,
    select(Case.decline_reason)
    .where(Case.id == PublicEntry.case_id)
    .scalar_subquery()
    .label("decline_reason"),
)


def _base(columns: Any, kind: str) -> Select[Any]:
    stmt = select(*columns).select_from(PublicEntry)
    if any(getattr(c, "table", None) is Workspace.__table__ for c in columns):
        stmt = stmt.outerjoin(Workspace, Workspace.id == PublicEntry.unit_id)
    return stmt.where(_still_public(kind))


def _capped_count(db: Session, stmt: Select[Any]) -> int:
    """How many rows ``stmt`` finds, counting no further than COUNT_CAP + 1."""
    return db.scalar(select(func.count()).select_from(stmt.limit(COUNT_CAP + 1).subquery())) or 0


# --- search on PostgreSQL: the narrow table public_terms (migration 0020) ---------------------------

# Not in the models' metadata: the table exists on PostgreSQL only (see app.public.search).
_TERMS: Final = Table(
    search.PG_TERMS,
    MetaData(),
    Column("case_id", Integer, primary_key=True),
    Column("kind", String(10)),
    Column("published_at", DateTime(timezone=True)),
    Column("unit_id", Integer),
    Column("category", String(20)),
    Column("tsv", TSVECTOR),
)
_T_CASE = _TERMS.c.case_id
_T_KIND = _TERMS.c.kind
_T_PUBLISHED = _TERMS.c.published_at
_T_TSV = _TERMS.c.tsv


def _pg_search(
    kind: str, filters: Filters, query: search.Query, *, public: bool = True, since: datetime | None = None
) -> Select[Any]:
    """The cases a search finds, from the narrow table: case id and date only (with
    ``public=False``, without checking that each case is still public: the caller does; with
    ``since``, only those published since then — the index itself answers for the months)."""
    stmt = (
        select(_T_CASE.label("case_id"), _T_PUBLISHED.label("published_at"))
        .select_from(_TERMS)
        .where(_T_TSV.op("@@")(search.tsquery(query)))
    )
    if since is not None:
        stmt = stmt.where(search.published_within(_T_PUBLISHED, since, utcnow() + timedelta(days=1)))
    if public:
        stmt = stmt.where(_still_public(kind, _T_CASE, _T_KIND))
    stmt = stmt.where(*_walkable_filters(filters))
    if filters.category:
        stmt = stmt.where(_TERMS.c.category == filters.category)
    if filters.topic or filters.region:
        entry: Select[Any] = (
            select(literal_column("1")).select_from(PublicEntry).where(PublicEntry.case_id == _T_CASE)
        )
        if filters.topic:
            entry = entry.where(PublicEntry.topic == filters.topic)
        if filters.region:
            entry = entry.where(PublicEntry.region == filters.region)
        stmt = stmt.where(entry.exists())
    return stmt


def _walkable_filters(filters: Filters) -> list[Any]:
    """The filters an index walks newest first: the unit (its index ``(unit_id, published_at,
    case_id)``, migration 0030) and the month (a range of the date index)."""
    conditions: list[Any] = []
    if filters.unit:
        conditions.append(_TERMS.c.unit_id == _unit_id(filters.unit))
    if filters.month:
        start, end = _month_bounds(filters.month)
        conditions += [start <= _T_PUBLISHED, end > _T_PUBLISHED]
    return conditions


# A search walks at most this many of the newest rows along the date index (it stops at the
# 1,001st hit, usually long before), or of a unit's rows along its own index (scattered over the
# table: a shorter walk); HIDDEN_SLACK: index rows of cases no longer public that the index path
# may skip before it needs the exact (slower) statement.
WALK_WINDOW: Final = 120_000
UNIT_WALK_WINDOW: Final = 20_000
WALK_SHARE: Final = 0.10  # a word this common is walked for; a rarer one asks the GIN index
HIDDEN_SLACK: Final = 100


_ESTIMATE: Final = text(
    f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {search.PG_TERMS} "  # noqa: S608  (a constant table name)
    "WHERE tsv @@ to_tsquery('simple'::regconfig, :q)"
)


def _estimated_share(db: Session, query: search.Query) -> float:
    """The share of messages a search is expected to find, from PostgreSQL's statistics of the
    search index (the planner's estimate, one EXPLAIN per token, no rows read): within a phrase
    the rarest token bounds it (adjacent characters go together), across terms they multiply
    (a lower bound: terms of one subject go together, see ``_sampled_share``)."""
    total = 1.0
    rows = db.scalar(
        text("SELECT greatest(reltuples, 1) FROM pg_class WHERE relname = :t"), {"t": search.PG_TERMS}
    )
    for phrase in query.phrases:
        shares = []
        for token in dict.fromkeys(phrase.tokens):
            plan = db.scalar(_ESTIMATE, {"q": search.token_query(token)})
            shares.append(float(plan[0]["Plan"]["Plan Rows"]) / float(rows or 1))
        total *= min(shares, default=1.0)
    return total


# The dates of public_terms by PostgreSQL's histogram (refreshed by ANALYZE), kept a few minutes:
# rows published since only make a window reaching back to one of these dates larger.
HISTOGRAM_SECONDS: Final = 300.0
_histogram: list[tuple[float, float, list[datetime]]] = []
_HISTOGRAM: Final = text(
    "SELECT s.histogram_bounds::text::timestamptz[], greatest(c.reltuples, 0) "
    "FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename "
    "WHERE s.tablename = :t AND s.attname = 'published_at'"
)


def _newest_since(db: Session, rows: float) -> datetime | None:
    """A date after which at least ``rows`` of the newest search rows lie (None: no statistics, or
    that would be most of the table)."""
    now = time.monotonic()
    if not _histogram or _histogram[0][0] < now:
        found = db.execute(_HISTOGRAM, {"t": search.PG_TERMS}).first()
        _histogram[:] = [(now + HISTOGRAM_SECONDS, float(found[1]), list(found[0] or []))] if found else []
    if not _histogram:
        return None
    _, total, bounds = _histogram[0]
    if len(bounds) < 3 or rows >= total / 2:
        return None
    # Each bucket between two bounds holds the same number of rows.
    step = total / (len(bounds) - 1)
    return bounds[max(0, len(bounds) - 2 - int(rows // step))]


# Rows of the newest that tell how often several terms go together.
SAMPLE_ROWS: Final = 2_000


def _sampled_share(db: Session, query: search.Query, product: float) -> float:
    """The share of messages that hold all the terms, from the newest SAMPLE_ROWS rows (a walk of
    the date index; never below the terms' product). The statistics know each term alone: 供暖 in
    4 % of the messages, 温度 in 0.5 %, so 0.02 % together — yet 1.2 % hold both, as 温度 comes
    with 供暖; from the product a window of the newest rows would look useless."""
    newest = select(_T_TSV).order_by(_T_PUBLISHED.desc(), _T_CASE.desc()).limit(SAMPLE_ROWS).subquery()
    match = newest.c.tsv.op("@@")(search.tsquery(query))
    seen, hits = db.execute(select(func.count(), func.count().filter(match)).select_from(newest)).one()
    return max(product, hits / seen) if seen else product


def _indexed(
    db: Session, kind: str, filters: Filters, query: search.Query, since: datetime | None = None
) -> list[int] | None:
    """The GIN index's answer: hits sorted by date, the newest 1,001 (+ HIDDEN_SLACK) checked for
    being still public. With ``since`` only hits published since then: None when they are not
    enough to fill the count (the caller asks again without)."""
    newest = (_T_PUBLISHED.desc(), _T_CASE.desc())
    found = _pg_search(kind, filters, query, public=False, since=since)
    wanted = COUNT_CAP + 1 + HIDDEN_SLACK
    newest_hits = found.add_columns(_T_KIND).order_by(*newest).limit(wanted).subquery()
    checked = db.execute(
        select(
            newest_hits.c.case_id, _still_public(kind, newest_hits.c.case_id, newest_hits.c.kind).label("ok")
        ).order_by(newest_hits.c.published_at.desc(), newest_hits.c.case_id.desc())
    ).all()
    ids = [row.case_id for row in checked if row.ok][: COUNT_CAP + 1]
    if len(ids) > COUNT_CAP:
        return ids
    if len(checked) < wanted:  # every hit was checked: all there is (since then)
        return ids if since is None else None
    # More hidden index rows among the newest hits than the slack: the exact statement.
    exact = _pg_search(kind, filters, query, since=since)
    ids = [row.case_id for row in db.execute(exact.order_by(*newest).limit(COUNT_CAP + 1))]
    return ids if since is None or len(ids) > COUNT_CAP else None


def _pg_search_ids(db: Session, kind: str, filters: Filters, query: search.Query) -> list[int]:
    """The first COUNT_CAP + 1 case ids a search finds, newest first — all the page and its
    capped count need.

    A word in a tenth of the messages or more (小区, 问题) is found by walking the newest rows
    along the date index and testing each: the walk stops at the 1,001st hit, a few thousand rows
    in, where the GIN index would first build a bitmap of every hit (289,078 for 小区) and fetch
    each from the table. With a unit or a month chosen, the walk goes along that unit's rows or
    that month's (when the word is common enough to fill the count there). The walk's answer is
    the whole answer when it found 1,001 hits or saw every row the filters allow.

    A word in a few per cent (供暖, 医保, 供暖 温度) asks the GIN index for its hits among the
    newest rows only — a window of the date index sized from the estimate (PostgreSQL ANDs the
    two bitmaps: no row outside the window is read). Otherwise, or when the window came back
    short, the GIN index answers for all rows: its hits sorted by date first, and only the newest
    1,001 (+ HIDDEN_SLACK) checked against the cases for being still public, not all of them."""
    newest = (_T_PUBLISHED.desc(), _T_CASE.desc())
    walkable = not (filters.category or filters.topic or filters.region)
    limit = UNIT_WALK_WINDOW if filters.unit else WALK_WINDOW
    share = _estimated_share(db, query) if walkable else 0.0
    needed = 2 * (COUNT_CAP + 1)
    if walkable and share * limit >= needed and (share >= WALK_SHARE or filters.unit or filters.month):
        where = _walkable_filters(filters)
        window = (
            select(_T_CASE, _T_PUBLISHED, _T_KIND, _T_TSV)
            .where(*where)
            .order_by(*newest)
            .limit(limit)
            .subquery()
        )
        walked = (
            select(window.c.case_id)
            .where(window.c.tsv.op("@@")(search.tsquery(query)))
            .where(_still_public(kind, window.c.case_id, window.c.kind))
            .order_by(window.c.published_at.desc(), window.c.case_id.desc())
            .limit(COUNT_CAP + 1)
        )
        ids = list(db.scalars(walked))
        if len(ids) > COUNT_CAP:
            return ids
        rows = select(literal_column("1")).select_from(_TERMS).where(*where).limit(limit).subquery()
        if (db.scalar(select(func.count()).select_from(rows)) or 0) < limit:
            return ids  # the walk saw every row there is: nothing else to find
    elif walkable and not (filters.unit or filters.month) and share > 0:
        # Terms of one subject go together far more often than their product says: sample.
        expected = share if len(query.phrases) == 1 else _sampled_share(db, query, share)
        since = _newest_since(db, 1.5 * needed / expected)
        if since is not None:
            found = _indexed(db, kind, filters, query, since)
            if found is not None:
                return found
    found = _indexed(db, kind, filters, query)
    assert found is not None
    return found


def _pg_search_page(
    db: Session, kind: str, filters: Filters, query: search.Query, page: int, per_page: int
) -> tuple[int, list[Any]]:
    hits = _pg_search_ids(db, kind, filters, query)
    total = len(hits)
    pages = max(1, -(-min(total, COUNT_CAP) // per_page))
    page = min(max(1, page), pages)
    if not total:
        return 0, []
    ids = hits[(page - 1) * per_page : page * per_page]
    by_id = {
        row.case_id: row
        for row in db.execute(_base(_LIST_COLUMNS, "all").where(PublicEntry.case_id.in_(ids)))
    }
    return total, [by_id[i] for i in ids if i in by_id]


def _item(row: Any, terms: tuple[str, ...]) -> ListItem:
    title = mask(row.title)
    texts = [mask(row.body), mask(row.answer)]
    return ListItem(
        case_id=row.case_id,
        kind=row.kind,
        title=title,
        unit_name=row.short_name or "",
        category=row.category,
        topic=row.topic,
        region=row.region,
        posted_at=row.posted_at,
        published_at=row.published_at,
        title_html=search.highlight(title, terms),
        excerpt=search.snippet(texts if terms else texts[:1], terms),
        reason=DECLINE_REASONS.get(row.decline_reason, "") if row.kind == "declined" else "",
    )


def list_entries(kind: str, filters: Filters, page: int = 1, *, per_page: int = PAGE_SIZE) -> ResultPage:
    """Public messages of one kind ("reply", "declined", or "all" for search), newest first.

    With ``filters.q`` only those the search finds, their snippets highlighted.
    """
    query = search.parse_query(filters.q) if filters.q else None
    if query is not None and not query:  # only punctuation: nothing to look for
        return ResultPage([], 0, 1, 1)
    found: list[Any]
    with reader() as db:
        if query is not None and db.get_bind().dialect.name == "postgresql":
            total, found = _pg_search_page(db, kind, filters, query, page, per_page)
        else:
            rows = _filtered(_base(_LIST_COLUMNS, kind), filters)
            ids = _filtered(_base((PublicEntry.case_id,), kind), filters)
            if query is not None:
                condition = search.matches(db, query)
                rows, ids = rows.where(condition), ids.where(condition)
            if query is None:  # the first 1,001 newest: a walk of the date index, whatever the statistics
                ids = ids.order_by(PublicEntry.published_at.desc(), PublicEntry.case_id.desc())
            total = _capped_count(db, ids)
            page = min(max(1, page), max(1, -(-min(total, COUNT_CAP) // per_page)))
            found = (
                list(
                    db.execute(
                        rows.order_by(PublicEntry.published_at.desc(), PublicEntry.case_id.desc())
                        .limit(per_page)
                        .offset((page - 1) * per_page)
                    )
                )
                if total
                else []
            )
    pages = max(1, -(-min(total, COUNT_CAP) // per_page))
    page = min(max(1, page), pages)
    terms = query.terms if query else ()
    return ResultPage([_item(r, terms) for r in found], total, page, pages)


def latest_replies(limit: int = 8) -> list[ListItem]:
    """The newest replies for the home page: no count."""
    with reader() as db:
        rows = db.execute(
            _base(_LIST_COLUMNS, "reply")
            .order_by(PublicEntry.published_at.desc(), PublicEntry.case_id.desc())
            .limit(limit)
        ).all()
    return [_item(r, ()) for r in rows]


@dataclass(frozen=True)
class FilterOptions:
    units: list[tuple[str, str]] = field(default_factory=list)  # (slug, name)
    categories: list[tuple[str, str]] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    months: list[str] = field(default_factory=list)  # newest first


# The filters' choices are the same for every visitor and change rarely: each web process keeps
# them for as long as a list page may be cached anyway (controllers.LIST_CACHE, 60 s).
OPTIONS_SECONDS: Final = 60.0
_options: dict[str, tuple[float, FilterOptions]] = {}


def filter_options(kind: str) -> FilterOptions:
    """The values the filters of a list can take: only those that find something (as of at most
    ``OPTIONS_SECONDS`` ago)."""
    kept = _options.get(kind)
    now = time.monotonic()
    if kept is not None and kept[0] > now:
        return kept[1]
    options = _filter_options(kind)
    _options[kind] = (now + OPTIONS_SECONDS, options)
    return options


def forget_kept() -> None:
    """A new application (its database may be another, or reset): the filters' choices and the
    search index's date histogram are read afresh."""
    _options.clear()
    _histogram.clear()


def _filter_options(kind: str) -> FilterOptions:
    with reader() as db:
        # A unit that answered something public: one probe of (kind, unit_id, published_at) each.
        units = db.execute(
            select(Workspace.slug, Workspace.name)
            .where(
                exists(
                    select(literal_column("1"))
                    .select_from(PublicEntry)
                    .where(PublicEntry.kind == kind, PublicEntry.unit_id == Workspace.id, _still_public(kind))
                )
            )
            .order_by(Workspace.name)
        ).all()
        topics = db.scalars(_distinct_values("topic"), {"kind": kind}).all()
        regions = db.scalars(_distinct_values("region"), {"kind": kind}).all()
        # The two ends of (kind, published_at), walked until a row whose case is still public.
        ends = [
            db.scalar(
                select(PublicEntry.published_at)
                .where(PublicEntry.kind == kind, _still_public(kind))
                .order_by(order)
                .limit(1)
            )
            for order in (PublicEntry.published_at.asc(), PublicEntry.published_at.desc())
        ]
    return FilterOptions(
        units=[(slug, name) for slug, name in units if slug],
        categories=list(CATEGORIES.items()),
        topics=list(topics)[:200],
        regions=list(regions)[:200],
        months=_months_between(ends[0], ends[1]),
    )


def _distinct_values(column: str) -> Any:
    """The distinct non-empty values of ``column`` for a kind, by a loose index scan of
    ``(kind, column)`` (a recursive CTE, one index probe a value; at most 200)."""
    assert column in ("topic", "region")
    return text(
        f"WITH RECURSIVE v(value, n) AS ("  # noqa: S608 (a constant column name)
        f" SELECT (SELECT min({column}) FROM public_entries WHERE kind = :kind AND {column} > ''), 1"
        f" UNION ALL"
        f" SELECT (SELECT min({column}) FROM public_entries WHERE kind = :kind AND {column} > v.value), n + 1"
        f" FROM v WHERE v.value IS NOT NULL AND n < 200"
        f") SELECT value FROM v WHERE value IS NOT NULL"
    )


def _months_between(first: datetime | None, last: datetime | None) -> list[str]:
    if first is None or last is None:
        return []
    a, b = first.astimezone(_tz()).date().replace(day=1), last.astimezone(_tz()).date().replace(day=1)
    months: list[str] = []
    while b >= a and len(months) < 240:
        months.append(b.strftime("%Y-%m"))
        b = (b - timedelta(days=1)).replace(day=1)
    return months


# --- one reply, one declined message ---------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A published reply as the public page shows it (第十二条, 第十八条)."""

    case_id: int
    title: str
    body: str
    category: str
    topic: str
    region: str
    posted_at: datetime
    registered_at: datetime
    dispatched_at: datetime | None
    replied_at: datetime | None
    published_at: datetime
    unit_name: str
    unit_phone: str
    handler_name: str
    handler_phone: str
    private: bool
    is_explanation: bool
    answer: str  # the masked reply, or the 第十八条 note
    etag: str  # covers the case's version, the unit's name and phone and the sealed PDF
    pdf_digest: str | None = None  # SHA-256 of the sealed reply letter, once it has been issued

    @property
    def category_label(self) -> str:
        return CATEGORIES.get(self.category, self.category)

    @property
    def last_modified(self) -> datetime:
        return self.published_at

    @property
    def explanation_note(self) -> str:
        return EXPLANATION_NOTE


def _etag(*parts: Any) -> str:
    digest = hashlib.sha256("\x1f".join(map(str, (RENDER_VERSION, *parts))).encode()).hexdigest()
    return f'"{digest[:32]}"'


_REPLY_STATEMENT: Any = None


def _reply_statement() -> Any:
    """The reply page's one statement (the case, its unit and the sealed PDF's digest), built once."""
    global _REPLY_STATEMENT
    if _REPLY_STATEMENT is None:
        from app.documents.models import Document

        digest = (
            select(Document.sha256)
            .where(
                Document.case_id == Case.id,
                Document.kind == "reply_letter",
                Document.workspace_id == Case.reply_unit_id,
                Case.reply_private.is_(False),
            )
            .order_by(Document.created_at.desc(), Document.id.desc())
            .limit(1)
            .scalar_subquery()
            .label("pdf_digest")
        )
        _REPLY_STATEMENT = (
            select(
                Case.id,
                Case.version,
                Case.title,
                Case.body,
                Case.category,
                Case.topic,
                Case.region,
                Case.posted_at,
                Case.registered_at,
                Case.dispatched_at,
                Case.reply_submitted_at,
                Case.published_at,
                Case.reply_text,
                Case.reply_private,
                Case.reply_is_explanation,
                Case.reply_handler_name,
                Case.reply_handler_phone,
                Workspace.name,
                Workspace.contact_phone,
                digest,
            )
            .outerjoin(Workspace, Workspace.id == Case.reply_unit_id)
            .where(Case.id == bindparam("case_id"), is_public_reply())
        )
    return _REPLY_STATEMENT


def reply(case_id: int, db: Session | None = None) -> Reply | None:
    """The published reply of a case, or None (unpublished, declined, missing: all alike).

    Read through the public reader, or through ``db`` (the publish step's own transaction, which
    renders the static page; it must see every workspace).
    """
    if db is None:
        with reader() as own:
            row = own.execute(_reply_statement(), {"case_id": case_id}).one_or_none()
    else:
        row = db.execute(_reply_statement(), {"case_id": case_id}).one_or_none()
    if row is None:
        return None
    keep = (row.reply_handler_name, row.reply_handler_phone, row.contact_phone or "")
    answer = PRIVATE_REPLY_NOTE if row.reply_private else mask(row.reply_text, keep=keep)
    etag = _etag("reply", row.id, row.version, row.published_at, row.name, row.contact_phone)
    return Reply(
        case_id=row.id,
        title=mask(row.title),
        body=mask(row.body),
        category=row.category,
        topic=row.topic,
        region=row.region,
        posted_at=row.posted_at,
        registered_at=row.registered_at,
        dispatched_at=row.dispatched_at,
        replied_at=row.reply_submitted_at,
        published_at=row.published_at,
        unit_name=row.name or "",
        unit_phone=row.contact_phone or "",
        handler_name=row.reply_handler_name,
        handler_phone=row.reply_handler_phone,
        private=row.reply_private,
        is_explanation=row.reply_is_explanation,
        answer=answer,
        etag=etag[:-1] + f"-{(row.pdf_digest or '')[:16]}" + '"',
        pdf_digest=row.pdf_digest,
    )


@dataclass(frozen=True)
class Declined:
    """A message declined under 第五条: the reason, the explanation and the suggestion."""

    case_id: int
    title: str
    body: str
    withheld: bool
    category: str
    posted_at: datetime
    decided_at: datetime | None
    reason: str
    explanation: str
    suggestion: str
    etag: str

    @property
    def category_label(self) -> str:
        return CATEGORIES.get(self.category, self.category)

    @property
    def last_modified(self) -> datetime:
        return self.decided_at or self.posted_at


def declined(case_id: int) -> Declined | None:
    with reader() as db:
        row = db.execute(
            select(
                Case.id,
                Case.version,
                Case.title,
                Case.body,
                Case.category,
                Case.posted_at,
                Case.decline_reason,
                Case.decline_explanation,
                Case.decline_suggestion,
            ).where(Case.id == case_id, is_public_declined())
        ).one_or_none()
        decided = (
            db.scalar(
                select(func.max(TimelineEntry.at)).where(
                    TimelineEntry.case_id == case_id, TimelineEntry.action == "decline"
                )
            )
            if row
            else None
        )
    if row is None:
        return None
    withheld = row.decline_reason in WITHHELD_REASONS
    return Declined(
        case_id=row.id,
        title=WITHHELD_TITLE if withheld else mask(row.title),
        body=WITHHELD_BODY if withheld else mask(row.body),
        withheld=withheld,
        category=row.category,
        posted_at=row.posted_at,
        decided_at=decided,
        reason=DECLINE_REASONS.get(row.decline_reason, DECLINE_REASONS["other"]),
        explanation=mask(row.decline_explanation),
        suggestion=mask(row.decline_suggestion),
        etag=_etag("declined", row.id, row.version, decided),
    )


# --- sitemap ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SitemapEntry:
    path: str
    lastmod: date


def sitemap(limit: int = 50_000) -> list[SitemapEntry]:
    """Every public reply and declined message, newest first (a sitemap holds at most 50 000)."""
    with reader() as db:
        rows = db.execute(
            _base((PublicEntry.case_id, PublicEntry.kind, PublicEntry.published_at), "all")
            .order_by(PublicEntry.published_at.desc())
            .limit(limit)
        ).all()
    prefix = {"reply": "/replies/", "declined": "/declined/"}
    return [
        SitemapEntry(prefix[kind] + str(case_id), published.astimezone(_tz()).date())
        for case_id, kind, published in rows
    ]


__all__ = [
    "Declined",
    "Filters",
    "ListItem",
    "Reply",
    "ResultPage",
    "declined",
    "filter_options",
    "forget_kept",
    "latest_replies",
    "list_entries",
    "reply",
    "sitemap",
]
