"""Chinese full-text search over the public index, on SQLite and PostgreSQL alike.

Chinese has no spaces, so both databases are given the text already cut into tokens: every run of
letters other than a–z (Chinese, Mongolian …) becomes its overlapping character pairs plus its last
character (``供暖温度`` → ``供暖 暖温 温度 度``); every run of a–z/0–9 (after NFKC and lower-casing)
is one token. A query is cut the same way and asks for its pairs as a phrase (consecutive
positions), so ``暖温`` finds ``供暖温度`` but not ``供暖，温度``; a single character asks for a
token that starts with it. Terms separated by spaces must all match.

* SQLite: the FTS5 table ``public_search`` (tokenizer ``unicode61``) is an external-content index
  of ``public_entries.terms``, kept in step by triggers (migration 0015).
* PostgreSQL: a GIN index on ``to_tsvector('simple', terms)``; the query is a ``tsquery`` with
  ``<->`` (followed by) and ``:*`` (prefix). No extension is needed (pg_trgm would find nothing
  for the two-character words that most Chinese searches are, without reading the whole index).

Only masked text goes into the index (:func:`app.public.masking.mask`), so neither a match nor a
snippet can show more than the page. Highlighting escapes the text first, then wraps the hits in
``<mark>``.

Public API: :func:`index_case` (the centre's publish and decline steps call it in their
transaction), :func:`reindex_all` (``minpan demo``, migration 0015, tests).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from markupsafe import Markup, escape
from sqlalchemy import ColumnElement, and_, cast, delete, func, insert, literal_column, select, text
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.orm import Session

from app.cases.models import Case, TimelineEntry
from app.db import utcnow
from app.public.masking import mask
from app.public.models import PublicEntry
from app.public.visibility import (
    PRIVATE_REPLY_NOTE,
    WITHHELD_BODY,
    WITHHELD_REASONS,
    WITHHELD_TITLE,
    is_public,
)
from app.tenants.scope import cross_workspace

# Database objects of the index that the models do not describe (Alembic's comparison skips them).
FTS_TABLE: Final = "public_search"
PG_INDEX: Final = "ix_public_entries_terms_fts"  # until migration 0020
PG_TERMS: Final = "public_terms"  # the narrow search table (migration 0020)
PG_TERMS_INDEX: Final = "ix_public_terms_tsv_month"  # (tsv, month), migration 0032
PG_TERMS_OLD_INDEX: Final = "ix_public_terms_tsv"  # until migration 0032
MAX_QUERY_TERMS: Final = 8
MAX_QUERY_LENGTH: Final = 60

_RUN: Final = re.compile(r"([0-9a-z]+)|([^\W\d_a-z]+)")


def include_name(name: str | None, type_: str, _parents: Any = None) -> bool:
    """For Alembic's comparison of models and database: leave the search index's own objects out."""
    if name is None:
        return True
    if type_ == "table":
        return not (name in (FTS_TABLE, PG_TERMS) or name.startswith(FTS_TABLE + "_"))
    return name not in (PG_INDEX, PG_TERMS_OLD_INDEX, PG_TERMS_INDEX)


# --- tokens ---------------------------------------------------------------------------------------


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def document_tokens(*texts: str) -> list[str]:
    """The tokens of a text as stored in the index (pairs and the last character of each run)."""
    tokens: list[str] = []
    for value in texts:
        for word, letters in _RUN.findall(_normal(value)):
            if word:
                tokens.append(word)
            else:
                tokens.extend(letters[i : i + 2] for i in range(len(letters) - 1))
                tokens.append(letters[-1])
    return tokens


@dataclass(frozen=True)
class Phrase:
    """One query term: tokens at consecutive positions; the last may be a prefix."""

    tokens: tuple[str, ...]
    prefix: bool


@dataclass(frozen=True)
class Query:
    text: str  # as shown back in the search box
    terms: tuple[str, ...]  # the normalised words, for highlighting
    phrases: tuple[Phrase, ...]

    def __bool__(self) -> bool:
        return bool(self.phrases)


def parse_query(raw: str) -> Query:
    shown = " ".join(raw.split())[:MAX_QUERY_LENGTH]
    terms: list[str] = []
    phrases: list[Phrase] = []
    for chunk in _normal(shown).split():
        runs = _RUN.findall(chunk)
        if not runs:
            continue
        tokens: list[str] = []
        prefix = False
        for i, (word, letters) in enumerate(runs):
            last = i == len(runs) - 1
            if word:
                tokens.append(word)
                prefix = last
            elif len(letters) == 1:
                tokens.append(letters)
                prefix = last
            else:
                tokens.extend(letters[j : j + 2] for j in range(len(letters) - 1))
                prefix = False
        terms.extend(w or letters for w, letters in runs)
        phrases.append(Phrase(tuple(tokens), prefix))
        if len(phrases) == MAX_QUERY_TERMS:
            break
    return Query(shown, tuple(dict.fromkeys(terms)), tuple(phrases))


def _fts5_expression(query: Query) -> str:
    # Tokens are runs of word characters only: quoting them is enough.
    return " AND ".join('"' + " ".join(p.tokens) + '"' + ("*" if p.prefix else "") for p in query.phrases)


def _tsquery_expression(query: Query) -> str:
    parts = []
    for p in query.phrases:
        tokens = [f"'{t}'" for t in p.tokens]
        if p.prefix:
            tokens[-1] += ":*"
        parts.append("(" + " <-> ".join(tokens) + ")")
    return " & ".join(parts)


# The GIN index of public_terms has a second column: each row's month of publication (UTC) as the
# one-lexeme tsvector ``@YYYYMM`` (``public_terms_month``, migration 0032), so that a window of the
# newest rows is answered by the index itself.
MONTH_MARK: Final = "@"


def month_lexemes(since: datetime, until: datetime) -> list[str]:
    """The month lexemes of every month (UTC) from ``since`` to ``until``."""
    first, last = since.astimezone(UTC), until.astimezone(UTC)
    year, month = first.year, first.month
    out: list[str] = []
    while (year, month) <= (last.year, last.month):
        out.append(f"{MONTH_MARK}{year:04d}{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def published_within(published_at: Any, since: datetime, until: datetime) -> ColumnElement[bool]:
    """``published_at`` from ``since`` to ``until``: the months through the index, the exact
    start on the rows it returns."""
    months = cast(" | ".join(f"'{m}'" for m in month_lexemes(since, until)), TSQUERY)
    return and_(func.public_terms_month(published_at).op("@@")(months), published_at >= since)


def token_query(token: str) -> str:
    """One stored token as a ``tsquery`` text (tokens are runs of word characters: quoting is enough)."""
    return f"'{token}'"


def tsquery(query: Query) -> ColumnElement[Any]:
    """The query as a PostgreSQL ``tsquery`` (configuration ``simple``)."""
    return func.to_tsquery(literal_column("'simple'::regconfig"), _tsquery_expression(query))


def matches(db: Session, query: Query) -> ColumnElement[bool]:
    """A condition on ``PublicEntry`` that holds for the rows the query finds."""
    if db.get_bind().dialect.name == "postgresql":
        return func.to_tsvector(literal_column("'simple'::regconfig"), PublicEntry.terms).op("@@")(
            func.to_tsquery(literal_column("'simple'::regconfig"), _tsquery_expression(query))
        )
    found = text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts").bindparams(  # noqa: S608 (a constant)
        fts=_fts5_expression(query)
    )
    return PublicEntry.case_id.in_(found.columns(literal_column("rowid")).scalar_subquery())


# --- highlighting -------------------------------------------------------------------------------


def highlight(text: str, terms: Sequence[str]) -> Markup:
    """``text`` escaped, with every occurrence of a term wrapped in ``<mark>``."""
    if not terms:
        return escape(text)
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
    out: list[Markup] = []
    last = 0
    for m in pattern.finditer(text):
        out.append(escape(text[last : m.start()]))
        out.append(Markup("<mark>{}</mark>").format(m.group(0)))
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def snippet(texts: Iterable[str], terms: Sequence[str], width: int = 90) -> Markup:
    """About ``width`` characters around the first hit in the first text that has one, highlighted."""
    texts = [" ".join(t.split()) for t in texts if t]
    lowered_terms = [t.lower() for t in terms]
    for value in texts:
        lowered = value.lower()
        hits = [i for i in (lowered.find(t) for t in lowered_terms) if i >= 0]
        if hits:
            start = max(0, min(hits) - width // 3)
            end = min(len(value), start + width)
            piece = ("…" if start else "") + value[start:end] + ("…" if end < len(value) else "")
            return highlight(piece, terms)
    first = texts[0] if texts else ""
    return highlight(first[:width] + ("…" if len(first) > width else ""), terms)


# --- the index ------------------------------------------------------------------------------------

_SOURCE: Final = (
    Case.id,
    Case.state,
    Case.title,
    Case.body,
    Case.posted_at,
    Case.category,
    Case.topic,
    Case.region,
    Case.reply_text,
    Case.reply_private,
    Case.reply_unit_id,
    Case.reply_handler_name,
    Case.reply_handler_phone,
    Case.published_at,
    Case.decline_reason,
    Case.decline_explanation,
    Case.decline_suggestion,
)


def _decided_at(db: Session, case_id: int) -> datetime:
    at = db.scalar(
        select(func.max(TimelineEntry.at)).where(
            TimelineEntry.case_id == case_id, TimelineEntry.action == "decline"
        )
    )
    return at or utcnow()


def entry_values(db: Session, row: Any) -> dict[str, Any]:
    """The index row of one public case: masked text and the columns the lists filter on."""
    if row.published_at is not None and not row.decline_reason:
        title, body = mask(row.title), mask(row.body)
        keep = [row.reply_handler_name, row.reply_handler_phone]
        answer = PRIVATE_REPLY_NOTE if row.reply_private else mask(row.reply_text, keep=keep)
        values = {"kind": "reply", "published_at": row.published_at, "unit_id": row.reply_unit_id}
    else:
        withheld = row.decline_reason in WITHHELD_REASONS
        title = WITHHELD_TITLE if withheld else mask(row.title)
        body = WITHHELD_BODY if withheld else mask(row.body)
        answer = mask(row.decline_explanation + "\n" + row.decline_suggestion)
        values = {"kind": "declined", "published_at": _decided_at(db, row.id), "unit_id": None}
    searchable = [title, body] + ([] if row.reply_private else [answer])
    return values | {
        "case_id": row.id,
        "posted_at": row.posted_at,
        "category": row.category,
        "topic": row.topic,
        "region": row.region,
        "title": title,
        "body": body,
        "answer": answer,
        "terms": " ".join(document_tokens(*searchable)),
        "indexed_at": utcnow(),
    }


def index_case(db: Session, case_id: int) -> bool:
    """Bring the case's index row in line with the case: written if the public may see it, else removed.

    Runs in the caller's transaction (the publish or decline step), so the index and the
    publication commit together. Returns whether the case is now in the index.
    """
    with cross_workspace(db):
        row = db.execute(select(*_SOURCE).where(Case.id == case_id, is_public())).one_or_none()
        db.execute(delete(PublicEntry).where(PublicEntry.case_id == case_id))
        if row is None:
            return False
        db.execute(insert(PublicEntry).values(entry_values(db, row)))
        # 页面静态化: the reply page, rendered in this transaction (app.public.pages).
        from app.public.pages import render_in

        render_in(db, case_id)
    return True


def reindex_all(db: Session, batch: int = 500) -> int:
    """Rebuild the whole index from the cases (after a change of the masking rules, for the demo)."""
    count = 0
    with cross_workspace(db):
        db.execute(delete(PublicEntry))
        last_id = 0
        while True:
            rows = db.execute(
                select(*_SOURCE).where(is_public(), Case.id > last_id).order_by(Case.id).limit(batch)
            ).all()
            if not rows:
                break
            db.execute(insert(PublicEntry), [entry_values(db, row) for row in rows])
            count += len(rows)
            last_id = rows[-1].id
        if db.get_bind().dialect.name == "sqlite":
            db.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')"))  # noqa: S608
    return count


__all__ = ["highlight", "include_name", "index_case", "matches", "parse_query", "reindex_all", "snippet"]
