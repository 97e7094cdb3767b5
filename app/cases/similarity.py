"""Similar earlier messages, so the centre can spot a 重复事项 when it triages (第五条: 正在办理过程中或
办理完毕的重复事项 may be declined).

No external service and no word segmenter: Chinese is compared by its overlapping character
bigrams and trigrams ("明仁小区供暖" → 明仁, 仁小, 小区, …, 明仁小, 仁小区, …), which catches shared key
phrases without knowing where words end. Texts are normalised first (NFKC folds full-width forms,
punctuation, symbols and whitespace are dropped, Latin is lower-cased), so 「明仁小区，供暖！」 and
「明仁小区 供暖」 are the same text. Two messages are compared by the cosine of their weighted
n-gram sets:

- a gram of the title weighs ``TITLE_WEIGHT`` times a gram of the body only (the title says what the
  message is about); a trigram weighs ``TRIGRAM_WEIGHT`` times a bigram (a longer match is rarer);
- when ranking candidates, each gram is also weighted by its inverse document frequency in the
  candidate pool, so phrases every message has (请问, 领导, 小区) count for little.

The functions at the top are pure; :func:`similar_cases` is the one that reads the database.
"""

from __future__ import annotations

import math
import operator
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cases.models import Case

TITLE_WEIGHT = 2.0
TRIGRAM_WEIGHT = 1.5
# Long letters say what they are about early on; comparing the first part keeps scoring cheap.
MAX_BODY_CHARS = 400
# Candidate pool (see similar_cases).
WINDOW_DAYS = 365
POOL_SIZE = 600
RECENT_SIZE = 200
# Same region / same topic: a small multiplicative bonus, so it re-orders close scores but never
# lifts an unrelated message over the threshold.
REGION_BONUS = 0.1
TOPIC_BONUS = 0.1

# After NFKC and lower-casing, anything that is not a letter or a digit: punctuation, symbols,
# whitespace (and the underscore, which \w counts as a letter).
_NOT_TEXT = re.compile(r"[\W_]+")


def normalise(text: str) -> str:
    """NFKC (full-width → half-width), without punctuation, symbols or whitespace, Latin lower-cased."""
    return _NOT_TEXT.sub("", unicodedata.normalize("NFKC", text or "").lower())


def ngrams(text: str) -> tuple[set[str], set[str]]:
    """The overlapping character bigrams and trigrams of the normalised text.

    A one-character text counts as its own bigram, so 「好」 still matches 「好」.
    """
    s = normalise(text)
    if len(s) < 2:
        return ({s} if s else set()), set()
    # map() over the characters keeps the loop in C: a page scores up to POOL_SIZE messages.
    return set(map(operator.add, s, s[1:])), set(map("".join, zip(s, s[1:], s[2:], strict=False)))


@dataclass(frozen=True)
class Document:
    """A message as weighted n-grams, with the sum of the squared weights (its norm², no IDF)."""

    weights: dict[str, float]
    sq_norm: float


def document(title: str, body: str = "") -> Document:
    """Title and body as weighted n-grams: a title gram weighs ``TITLE_WEIGHT`` times a body gram,
    a trigram ``TRIGRAM_WEIGHT`` times a bigram; a gram in both parts takes the title's weight."""
    body_bi, body_tri = ngrams(body[:MAX_BODY_CHARS])
    title_bi, title_tri = ngrams(title)
    weights = dict.fromkeys(body_bi, 1.0)
    weights.update(dict.fromkeys(body_tri, TRIGRAM_WEIGHT))
    weights.update(dict.fromkeys(title_bi, TITLE_WEIGHT))
    weights.update(dict.fromkeys(title_tri, TITLE_WEIGHT * TRIGRAM_WEIGHT))
    sq_norm = sum(count * w * w for w, count in Counter(weights.values()).items())
    return Document(weights, sq_norm)


def cosine(a: Document, b: Document) -> float:
    """Cosine of two weighted n-gram sets: 0 = nothing shared, 1 = the same text."""
    shared = a.weights.keys() & b.weights.keys()
    if not shared:
        return 0.0
    dot = sum(a.weights[g] * b.weights[g] for g in shared)
    return min(1.0, dot / math.sqrt(a.sq_norm * b.sq_norm))


def text_similarity(a: str, b: str) -> float:
    """How alike two texts are, 0…1, on their own (no pool, so no IDF)."""
    return cosine(document(a), document(b))


def rank(query: Document, docs: Sequence[Document]) -> list[float]:
    """The IDF-weighted cosine of ``query`` with each of ``docs``, 0…1, in order.

    IDF is smoothed over the pool (the query and the docs): ln((1 + n) / (1 + df)) + 1. It is
    counted only for the query's grams, which are the only ones that can be shared; a gram the
    query lacks is given the IDF of a gram found in a single document. That gram only enlarges
    the document's norm, so the shortcut slightly favours documents without much boilerplate
    and saves counting every gram of up to ``POOL_SIZE`` documents on each page view.
    """
    q = query.weights
    shared_grams = [q.keys() & d.weights.keys() for d in docs]
    df: Counter[str] = Counter()
    for shared in shared_grams:
        df.update(shared)
    n = len(docs) + 1
    idf2 = {g: (math.log((1 + n) / (2 + df[g])) + 1.0) ** 2 for g in q}
    rare2 = (math.log((1 + n) / 2) + 1.0) ** 2
    q_norm = math.sqrt(sum(w * w * idf2[g] for g, w in q.items()))
    scores = []
    for doc, shared in zip(docs, shared_grams, strict=True):
        if not shared or not q_norm:
            scores.append(0.0)
            continue
        d = doc.weights
        dot = sum(q[g] * d[g] * idf2[g] for g in shared)
        d_sq_norm = rare2 * doc.sq_norm + sum(d[g] * d[g] * (idf2[g] - rare2) for g in shared)
        scores.append(min(1.0, dot / (q_norm * math.sqrt(d_sq_norm))))
    return scores


@dataclass(frozen=True)
class Candidate:
    """What scoring needs of a case; the full rows are loaded only for the few that are shown."""

    id: int
    registered_at: datetime
    title: str
    body: str
    region: str
    topic: str


def score_candidates(query: Candidate, candidates: Sequence[Candidate]) -> list[tuple[int, float]]:
    """(case id, score) for each candidate: the ranked cosine times the region/topic bonus, ≤ 1."""
    scores = rank(document(query.title, query.body), [document(c.title, c.body) for c in candidates])
    scored = []
    for cand, score in zip(candidates, scores, strict=True):
        bonus = 1.0
        if query.region and cand.region == query.region:
            bonus += REGION_BONUS
        if query.topic and cand.topic == query.topic:
            bonus += TOPIC_BONUS
        scored.append((cand.id, min(1.0, score * bonus)))
    return scored


# --- the database --------------------------------------------------------------------------------


def candidate_pool(db: Session, case: Case) -> list[Candidate]:
    """At most ``POOL_SIZE`` of the most recent cases that share the region or the topic, plus the
    ``RECENT_SIZE`` most recent cases of any kind, all within ``WINDOW_DAYS`` of this one."""
    since = case.registered_at - timedelta(days=WINDOW_DAYS)
    base = select(
        Case.id,
        Case.registered_at,
        Case.title,
        func.substr(Case.body, 1, MAX_BODY_CHARS),
        Case.region,
        Case.topic,
    ).where(Case.id != case.id, Case.registered_at >= since)
    # registered_at alone, so each slice is read straight off its index (migration 0004).
    newest_first = Case.registered_at.desc()
    slices = []
    if case.region:
        slices.append(base.where(Case.region == case.region).order_by(newest_first).limit(POOL_SIZE))
    if case.topic:
        slices.append(base.where(Case.topic == case.topic).order_by(newest_first).limit(POOL_SIZE))
    # Messages registered without (or with another spelling of) region and topic still get a look.
    slices.append(base.order_by(newest_first).limit(RECENT_SIZE))
    pool: dict[int, Candidate] = {}
    for query in slices:
        for case_id, registered_at, title, body, region, topic in db.execute(query):
            pool.setdefault(case_id, Candidate(case_id, registered_at, title, body, region, topic))
    newest = sorted(pool.values(), key=lambda c: (c.registered_at, c.id), reverse=True)
    return newest[:POOL_SIZE]


def similar_cases(
    db: Session, case: Case, limit: int = 5, min_score: float = 0.2
) -> list[tuple[Case, float]]:
    """The centre's cases most like ``case`` (not itself), best first, with a score in 0…1.

    The session is tenant-scoped, so only the centre's own cases are ever read. Earlier and later
    registrations both count: a duplicate may have been registered first by mistake.

    Trade-off: scoring is done in Python, so it must not see the whole table. The database first
    picks a candidate pool by index range scans, newest first (migration 0004): the most recent
    cases of the same region, of the same topic, and of any kind, registered within
    ``WINDOW_DAYS`` before this case (or after it), at most ``POOL_SIZE`` in all, reading only the
    first ``MAX_BODY_CHARS`` of each body. So the cost of a page is bounded whatever the size of
    the table (a full pool of long messages takes ~0.3 s of one core to score; the page asks only
    while a case waits for triage). What is given up: a duplicate registered more than a year
    earlier, or filed under another region *and* another topic and not among the ``RECENT_SIZE``
    newest cases, is not found; and IDF is that of the pool, not of the whole table.
    """
    query = Candidate(case.id, case.registered_at, case.title, case.body, case.region, case.topic)
    pool = candidate_pool(db, case)
    if not pool:
        return []
    scored = [(cid, s) for cid, s in score_candidates(query, pool) if s >= min_score]
    scored.sort(key=lambda item: item[1], reverse=True)
    best = dict(scored[:limit])
    if not best:
        return []
    rows = {c.id: c for c in db.scalars(select(Case).where(Case.id.in_(best)))}
    return [(rows[cid], score) for cid, score in best.items() if cid in rows]
