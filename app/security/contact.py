"""What a member of staff sees of a citizen's contact data: in full only where the work needs it.

个人信息保护法 第六条 (minimum necessary) and the regulation decide who needs it:

- the centre's 登记交办员 registers the message and checks that the citizen can be reached (第五条
  未提供真实身份或无法与网民取得联系, 第九条), and with the 审核发布员 calls the citizen back for
  the satisfaction follow-up (第十八条 满意率回访);
- the handling unit's 经办人, 分管领导 and 主要负责人 answer the citizen by telephone or e-mail
  when the reply touches on privacy (第十八条) and are bound to secrecy (第七条（二）).

Everyone else who can open a case or assignment — the centre's and units' administrators, the
system administrator, the supervision office — sees the data masked. Lists never show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from app.permissions import Role

# (workspace kind, role) pairs that see contact data in full.
FULL_CONTACT: Final = frozenset(
    {
        ("centre", Role.CENTRE_CLERK.value),
        ("centre", Role.CENTRE_REVIEWER.value),
        *(
            (kind, role.value)
            for kind in ("county", "bureau", "vertical")
            for role in (Role.HANDLER, Role.DEPUTY, Role.PRINCIPAL)
        ),
    }
)
_DIGITS: Final = frozenset("0123456789０１２３４５６７８９")


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str
    email: str
    full: bool

    @property
    def empty(self) -> bool:
        return not (self.name or self.phone or self.email)


def sees_full_contact(me: object) -> bool:
    """True if the person's current post needs the citizen's contact data in full."""
    workspace = getattr(me, "workspace", None)
    if workspace is None:
        return False
    return any((workspace.kind, role) in FULL_CONTACT for role in workspace.roles)


def mask_name(name: str) -> str:
    """王小明 → 王**; the first character only."""
    name = name.strip()
    if not name:
        return ""
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_phone(phone: str) -> str:
    """13847511000 → 138****1000; 0475-8212345 → 047*-***2345; shorter numbers keep the last 2 digits."""
    positions = [i for i, ch in enumerate(phone) if ch in _DIGITS]
    if not positions:
        return "*" * min(len(phone), 8) if phone else ""
    head, tail = (3, 4) if len(positions) >= 11 else (0, 2)
    tail = min(tail, max(len(positions) - head - 1, 0))
    keep = set(positions[:head]) | set(positions[len(positions) - tail :] if tail else [])
    return "".join("*" if (ch in _DIGITS and i not in keep) else ch for i, ch in enumerate(phone))


def mask_email(email: str) -> str:
    """zhangsan@qq.com → z***@qq.com (the domain is kept)."""
    local, at, domain = email.strip().rpartition("@")
    if not at:
        return mask_name(email)
    return (local[:1] or "*") + "***@" + domain


def contact(me: object, holder: object) -> Contact:
    """The citizen's contact data on a case or assignment, as ``me`` may see it."""
    name = getattr(holder, "citizen_name", "") or ""
    phone = getattr(holder, "citizen_phone", "") or ""
    email = getattr(holder, "citizen_email", "") or ""
    if sees_full_contact(me):
        return Contact(name, phone, email, full=True)
    return Contact(mask_name(name), mask_phone(phone), mask_email(email) if email else "", full=False)
