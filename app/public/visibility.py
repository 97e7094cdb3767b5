"""What of a case the public may see, in one place (第五条, 第十二条, 第十八条).

Read by the index writer (:mod:`app.public.search`) and the public reads
(:mod:`app.public.queries`), so both decide alike.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import ColumnElement, and_, or_

from app.cases.models import Case

# A published reply stays public when the case is archived (第十六条).
REPLY_STATES: Final = ("published", "archived")

# 第十八条: a reply that touches the citizen's privacy went to them by phone or e-mail; the
# public page says so instead of showing it.
PRIVATE_REPLY_NOTE: Final = "该留言涉及个人隐私，已通过电话/邮件等方式答复留言人。"
EXPLANATION_NOTE: Final = "该留言情况特殊、难以办结，经运维中心同意，承办单位已向留言人作出解释说明。"

# 第五条 reasons whose message itself must not be shown: secrets and privacy, the military and
# state security, unlawful or abusive content. Only the decision, the reason and the suggestion are.
WITHHELD_REASONS: Final = frozenset({"secrets_privacy", "military_security", "unlawful_abusive"})
WITHHELD_TITLE: Final = "（留言内容不予公开）"
WITHHELD_BODY: Final = "依据第五条，该留言内容不予公开，仅公开不予受理的理由和建议。"


def is_public_reply() -> ColumnElement[bool]:
    return and_(Case.state.in_(REPLY_STATES), Case.published_at.is_not(None), Case.decline_reason == "")


def is_public_declined() -> ColumnElement[bool]:
    return or_(
        Case.state == "declined",
        and_(Case.state == "archived", Case.published_at.is_(None), Case.decline_reason != ""),
    )


def is_public() -> ColumnElement[bool]:
    return or_(is_public_reply(), is_public_declined())
