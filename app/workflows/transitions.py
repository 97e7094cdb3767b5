"""The transition table of the case and assignment state machines (第八条 to 第十八条).

Read it as the regulation: each line is (machine, from states, action, roles → to state), with
the guards that must hold and the effects it has. The flow chart, the timeline labels and the
exhaustive tests all read this table.
"""

from __future__ import annotations

from app.cases.vocab import DECLINE_REASONS, QUALITY_FLAGS
from app.permissions import Role
from app.workflows import effects as fx
from app.workflows.engine import SYSTEM, Step, Transition
from app.workflows.signatures import signature_problem

CLERK, REVIEWER = Role.CENTRE_CLERK.value, Role.CENTRE_REVIEWER.value
HANDLER, DEPUTY, PRINCIPAL = Role.HANDLER.value, Role.DEPUTY.value, Role.PRINCIPAL.value
UNIT_ADMIN = Role.UNIT_ADMIN.value


# --- guards: each returns a refusal in Chinese, or None ------------------------------------------


def _text(step: Step, key: str) -> str:
    return str(step.payload.get(key, "") or "").strip()


def decline_reason_is_statutory(step: Step) -> str | None:
    if _text(step, "reason") not in DECLINE_REASONS:
        return "请选择第五条规定的不予受理情形。"
    if not _text(step, "explanation"):
        return "请填写不予受理说明（第五条：原则上应做出不予受理说明）。"
    if not _text(step, "suggestion"):
        return "请给出合理建议（第五条）。"
    return None


def routing_is_valid(step: Step) -> str | None:
    return fx.routing_problem(step)


def units_are_valid(step: Step) -> str | None:
    return fx.dispatch_problem(step)


def has_comment(step: Step) -> str | None:
    return None if step.comment else "请填写意见。"


def quality_flag_given(step: Step) -> str | None:
    if _text(step, "quality_flag") not in QUALITY_FLAGS:
        return "请选择退回原因（第十九条：答非所问、敷衍塞责、推诿扯皮、重答轻办）。"
    return has_comment(step)


def is_lead(step: Step) -> str | None:
    return None if step.obj.is_lead else "协办单位不直接答复，请将协办意见报送牵头单位（第十条）。"


def is_co_unit(step: Step) -> str | None:
    return "牵头单位须形成统一回复，不能报送协办意见。" if step.obj.is_lead else None


def has_draft(step: Step) -> str | None:
    return None if step.obj.reply_text.strip() else "请先起草回复意见。"


def has_text(step: Step) -> str | None:
    return None if _text(step, "text") else "请填写内容。"


def valid_signature(step: Step) -> str | None:
    return signature_problem(step.signature)


def on_day_of_receipt(step: Step) -> str | None:
    """第十五条: a return must be filed on the day the assignment sheet was received."""
    from app.workflows.deadlines import local_date

    received = step.obj.received_at or step.obj.dispatched_at
    if local_date(step.now) != local_date(received):
        day = f"{local_date(received):%Y年%m月%d日}"
        return f"退办须在收到承办单当日（{day}）提出，现已逾期，不能退办（第十五条）。"
    return None


def has_reason(step: Step) -> str | None:
    return None if _text(step, "reason") else "请说明退办原因（第十五条）。"


def extension_request_is_valid(step: Step) -> str | None:
    """第十四条: at most 3 working days, asked before the due date."""
    from app.workflows.deadlines import MAX_EXTENSION_DAYS, local_date

    try:
        days = int(step.payload.get("days", 0))
    except (TypeError, ValueError):
        days = 0
    if not 1 <= days <= MAX_EXTENSION_DAYS:
        return f"延期天数须为 1 至 {MAX_EXTENSION_DAYS} 个工作日（第十四条）。"
    if local_date(step.now) > step.obj.due_date:
        return "已超过办理时限，不能再申请延期（第十四条：须在期限届满前提出）。"
    if step.obj.extension_days:
        return "本承办单已延期过一次，不能再次延期。"
    if not _text(step, "reason"):
        return "请说明延期理由。"
    return None


def extension_decision_is_valid(step: Step) -> str | None:
    return fx.extension_decision_problem(step)


def explanation_decision_is_valid(step: Step) -> str | None:
    return fx.explanation_decision_problem(step)


def return_decision_is_valid(step: Step) -> str | None:
    return fx.return_decision_problem(step, lead=None)


def lead_return_decision(step: Step) -> str | None:
    return fx.return_decision_problem(step, lead=True)


def co_return_decision(step: Step) -> str | None:
    return fx.return_decision_problem(step, lead=False)


def not_a_draft_after_signature(step: Step) -> str | None:
    return None if _text(step, "reply_text") else "回复意见不能为空。"


# --- the table ------------------------------------------------------------------------------------

C, A = "case", "assignment"

TABLE: tuple[Transition, ...] = (
    # 初审交办 (第九条) and 不予受理 (第五条)
    Transition(
        C,
        ("received",),
        "decline",
        (CLERK,),
        "declined",
        "不予受理",
        "第五条",
        (decline_reason_is_statutory,),
        (fx.record_decline,),
    ),
    Transition(
        C,
        ("received",),
        "dispatch",
        (CLERK,),
        "assigned",
        "转办（制发承办单）",
        "第九条、第十条",
        (units_are_valid,),
        (fx.issue_assignment_sheets,),
    ),
    # 办理 — the unit's side (第十一条)
    Transition(
        A,
        ("pending",),
        "receive",
        (HANDLER, DEPUTY, PRINCIPAL, UNIT_ADMIN),
        "handling",
        "签收并分办",
        "第十一条",
        (routing_is_valid,),
        (fx.mark_received,),
    ),
    Transition(
        A,
        ("handling",),
        "save_draft",
        (HANDLER,),
        "handling",
        "起草回复意见",
        "第十一条",
        (not_a_draft_after_signature,),
        (fx.save_draft,),
    ),
    Transition(
        A,
        ("handling",),
        "contribute",
        (HANDLER,),
        "submitted",
        "报送协办意见",
        "第十条",
        (is_co_unit, has_text),
        (fx.record_contribution,),
    ),
    Transition(
        A,
        ("handling",),
        "request_signoff",
        (HANDLER,),
        "awaiting_signoff",
        "提交审签",
        "第十一条",
        (is_lead, has_draft),
        (),
    ),
    Transition(
        A,
        ("awaiting_signoff",),
        "sign",
        (PRINCIPAL,),
        "submitted",
        "主要负责人审签并加盖公章",
        "第十一条",
        (valid_signature,),
        (fx.sign_and_deliver,),
    ),
    Transition(
        A,
        ("awaiting_signoff",),
        "reject_signoff",
        (PRINCIPAL,),
        "handling",
        "审签退回修改",
        "第十一条",
        (has_comment,),
        (),
    ),
    # 退办 (第十五条): the handler states the reason, the deputy leader signs, on the day of receipt
    Transition(
        A,
        ("pending", "handling"),
        "draft_return",
        (HANDLER,),
        "return_drafted",
        "拟退办",
        "第十五条",
        (on_day_of_receipt, has_reason),
        (fx.record_return_reason,),
    ),
    Transition(
        A,
        ("return_drafted",),
        "sign_return",
        (DEPUTY,),
        "return_requested",
        "分管领导签字退办",
        "第十五条",
        (on_day_of_receipt, valid_signature),
        (fx.record_return_signature,),
    ),
    Transition(
        A, ("return_drafted",), "cancel_return", (HANDLER, DEPUTY), "handling", "撤回退办", "第十五条", (), ()
    ),
    # 延办 (第十四条): asked before the due date, approved level by level
    Transition(
        A,
        ("handling",),
        "request_extension",
        (HANDLER,),
        "extension_requested",
        "申请延期",
        "第十四条",
        (extension_request_is_valid,),
        (fx.record_extension_request,),
    ),
    Transition(
        A,
        ("extension_requested",),
        "endorse_extension",
        (DEPUTY, PRINCIPAL),
        "extension_pending",
        "单位领导同意延期申请",
        "第十四条",
        (),
        (),
    ),
    Transition(
        A,
        ("extension_requested",),
        "refuse_extension",
        (DEPUTY, PRINCIPAL),
        "handling",
        "单位领导不同意延期",
        "第十四条",
        (has_comment,),
        (fx.clear_extension_request,),
    ),
    # The centre's decisions on returns and extensions, and review (第十一条, 第十二条, 第十九条)
    Transition(
        C,
        ("assigned",),
        "accept_return",
        (CLERK,),
        "received",
        "同意牵头单位退办，重新派单",
        "第十五条",
        (lead_return_decision,),
        (fx.accept_return,),
    ),
    Transition(
        C,
        ("assigned",),
        "accept_co_return",
        (CLERK,),
        "assigned",
        "同意协办单位退办",
        "第十五条",
        (co_return_decision,),
        (fx.accept_return,),
    ),
    Transition(
        C,
        ("assigned",),
        "reject_return",
        (CLERK,),
        "assigned",
        "不同意退办",
        "第十五条",
        (return_decision_is_valid, has_comment),
        (fx.reject_return,),
    ),
    Transition(
        C,
        ("assigned",),
        "approve_extension",
        (CLERK,),
        "assigned",
        "同意延期",
        "第十四条",
        (extension_decision_is_valid,),
        (fx.approve_extension,),
    ),
    Transition(
        C,
        ("assigned",),
        "deny_extension",
        (CLERK,),
        "assigned",
        "不同意延期",
        "第十四条",
        (extension_decision_is_valid, has_comment),
        (fx.deny_extension,),
    ),
    Transition(
        C, ("assigned",), "deliver_reply", (SYSTEM,), "under_review", "收到书面答复", "第十一条", (), ()
    ),
    Transition(
        C,
        ("under_review",),
        "publish",
        (REVIEWER,),
        "published",
        "审核通过并当日公开答复",
        "第十二条",
        (),
        (fx.publish,),
    ),
    Transition(
        C,
        ("under_review",),
        "send_back",
        (REVIEWER,),
        "assigned",
        "退回重办",
        "第十九条",
        (quality_flag_given,),
        (fx.send_back,),
    ),
    # 归档 (第十六条)
    Transition(
        C,
        ("published", "declined"),
        "archive",
        (REVIEWER,),
        "archived",
        "归档",
        "第十六条",
        (),
        (fx.archive,),
    ),
    # 第十八条: a special case answered with an explanation, only with the centre's consent
    Transition(
        A,
        ("handling",),
        "request_explanation",
        (HANDLER,),
        "explanation_requested",
        "申请作解释说明答复",
        "第十八条",
        (is_lead, has_reason),
        (fx.record_explanation_request,),
    ),
    Transition(
        C,
        ("assigned",),
        "consent_explanation",
        (CLERK,),
        "assigned",
        "同意作解释说明答复",
        "第十八条",
        (explanation_decision_is_valid,),
        (fx.consent_explanation,),
    ),
    Transition(
        C,
        ("assigned",),
        "refuse_explanation",
        (CLERK,),
        "assigned",
        "不同意作解释说明答复",
        "第十八条",
        (explanation_decision_is_valid, has_comment),
        (fx.refuse_explanation,),
    ),
    Transition(
        A,
        ("explanation_requested",),
        "explanation_consented",
        (SYSTEM,),
        "handling",
        "中心同意解释说明",
        "第十八条",
        (),
        (),
    ),
    Transition(
        A,
        ("explanation_requested",),
        "explanation_refused",
        (SYSTEM,),
        "handling",
        "中心不同意解释说明",
        "第十八条",
        (),
        (),
    ),
    # Steps the engine takes as effects of the steps above
    Transition(A, ("submitted",), "reopen", (SYSTEM,), "handling", "退回重办", "第十九条", (), ()),
    Transition(
        A, ("submitted", "handling", "pending"), "close", (SYSTEM,), "closed", "办结", "第十二条", (), ()
    ),
    Transition(
        A, ("return_requested",), "return_accepted", (SYSTEM,), "returned", "退办已同意", "第十五条", (), ()
    ),
    Transition(
        A, ("return_requested",), "return_rejected", (SYSTEM,), "handling", "退办未同意", "第十五条", (), ()
    ),
    Transition(
        A,
        (
            "pending",
            "handling",
            "submitted",
            "awaiting_signoff",
            "extension_requested",
            "extension_pending",
            "return_drafted",
            "explanation_requested",
        ),
        "withdraw",
        (SYSTEM,),
        "closed",
        "牵头单位退办，本单下撤",
        "第十五条",
        (),
        (),
    ),
    Transition(
        A,
        ("extension_pending",),
        "extension_approved",
        (SYSTEM,),
        "handling",
        "延期已同意",
        "第十四条",
        (),
        (),
    ),
    Transition(
        A,
        ("extension_pending",),
        "extension_denied",
        (SYSTEM,),
        "handling",
        "延期未同意",
        "第十四条",
        (),
        (fx.clear_extension_request,),
    ),
)

ACTION_LABELS = {t.action: t.label for t in TABLE} | {
    "instruct": "领导批示",
    "reminder": "提醒单",
    "urge": "催办单",
    "supervise": "督办单",
    "transfer": "移交函",
    "publication_overdue": "发布逾期",
}
