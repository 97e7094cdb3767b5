"""The regulation's fixed vocabularies, with the article each comes from."""

from __future__ import annotations

from typing import Final

# 第三条: where a message comes from.
BOARDS: Final = {
    "mayor": "市长板块",
    "chairman": "主席板块（自治区政府政研室交办）",
}

# 第四条 and the message board's own classification.
CATEGORIES: Final = {
    "consult": "咨询",
    "suggest": "建议",
    "complain": "投诉",
    "help": "求助",
    "other": "其他",
}

# 第五条: the only reasons a message may be declined (不予受理).
DECLINE_REASONS: Final = {
    "out_of_scope": "超出通辽市政府行政管理范围的事项",
    "legal_process": "已经进入司法机关、仲裁机关等受理程序或已通过上述法定程序处理的事项",
    "discipline_appeal": "不服从党纪、政纪处分的申诉",
    "secrets_privacy": "涉及国家秘密、商业秘密、个人隐私的事项",
    "military_security": "涉及军队和国家安全的问题",
    "duplicate": "正在办理过程中或办理完毕的重复事项",
    "unlawful_abusive": "违反法律规定、社会公序良俗以及恶意攻击、骚扰或无实质内容的事项",
    "no_identity": "未提供真实身份或无法与网民取得联系的事项",
    "other": "其他不予受理的事项",
}

# 第十九条: what a reply sent back can be flagged with.
QUALITY_FLAGS: Final = {
    "off_topic": "答非所问",
    "perfunctory": "敷衍塞责",
    "buck_passing": "推诿扯皮",
    "words_not_deeds": "重答轻办",
}

CASE_STATES: Final = {
    "received": "待交办",
    "declined": "不予受理",
    "assigned": "办理中",
    "under_review": "待审核",
    "published": "已公开答复",
    "archived": "已归档",
}

ASSIGNMENT_STATES: Final = {
    "pending": "待签收",
    "handling": "办理中",
    "awaiting_signoff": "待审签",
    "submitted": "已报送",
    "return_drafted": "退办待签",
    "return_requested": "退办待审",
    "returned": "已退回",
    "extension_requested": "延期待批",
    "extension_pending": "延期待中心审批",
    "explanation_requested": "解释说明待中心同意",
    "closed": "已办结",
}
