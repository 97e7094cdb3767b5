"""The centre's deduction rules per year, and the bulletins (通报) it issues (第二十一条)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.cases.models import TimelineEntry
from app.db import Base, utcnow
from app.escalation.models import Escalation


class AssessmentRules(Base):
    """How many points each kind of failing costs a unit in one year; one row per year.

    Points are stored in tenths (``5`` = 0.5 分) so that sums are exact on every database. A year
    without a row is assessed with the defaults (``rules.DEFAULTS``). A global table: the rules
    are the centre's and the same for every unit.
    """

    __tablename__ = "assessment_rules"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    base: Mapped[int] = mapped_column(Integer, default=1000)
    overdue: Mapped[int] = mapped_column(Integer, default=10)
    urge_ignored: Mapped[int] = mapped_column(Integer, default=5)
    supervise: Mapped[int] = mapped_column(Integer, default=20)
    transfer: Mapped[int] = mapped_column(Integer, default=50)
    quality: Mapped[int] = mapped_column(Integer, default=10)
    invalid_return: Mapped[int] = mapped_column(Integer, default=5)
    unsatisfied: Mapped[int] = mapped_column(Integer, default=5)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


BULLETIN_STATES = {"draft": "待签发", "issued": "已签发"}


class Bulletin(Base):
    """通报: the centre's city-wide report on one month (or quarter), made automatically as a
    draft, reviewed and issued by the centre. A global table: it speaks of every unit and is read
    by the supervision office and, once issued, by the units."""

    __tablename__ = "bulletins"

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(10), unique=True)  # 2026-10 | 2026-Q3
    kind: Mapped[str] = mapped_column(String(10), default="month")  # month | quarter
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)  # inclusive
    state: Mapped[str] = mapped_column(String(10), default="draft")
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    pdf_sha256: Mapped[str] = mapped_column(String(64), default="")  # "" while a worker renders it
    pdf_job_id: Mapped[int | None]  # the job rendering it (jobs.id; no key: jobs may be purged)
    generated_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    issued_by_name: Mapped[str] = mapped_column(String(64), default="")
    issued_at: Mapped[datetime | None]


# Indexes the assessment's rules and the supervision dashboard read through (migration 0021),
# declared here, beside the queries that need them, on the tables of the case workflow.
Index("ix_timeline_entries_action_at", TimelineEntry.action, TimelineEntry.at)
Index("ix_escalations_rung_issued", Escalation.rung, Escalation.issued_on)
