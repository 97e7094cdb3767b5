"""Demo data: every unit of Tongliao as a workspace and one person per role in the demo units.

Idempotent: running it again changes nothing that is already there.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.accounts.passwords import hash_password
from app.permissions import Role
from app.settings import get_settings
from app.tenants.models import Membership, Workspace
from app.tenants.services import import_units

# One password for every demo account, printed at start. Never used outside the demo.
DEMO_PASSWORD = "Tongliao#2026"  # noqa: S105

# The units that get a full set of demo people (第六条): three counties, three city bureaus and
# one vertical department, beside the centre and the supervision office.
DEMO_UNITS = ("horqin", "kailu", "naiman", "education", "housing", "health", "tax")

_SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
    "余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
)
_GIVEN = (
    "建国",
    "海燕",
    "志强",
    "丽娟",
    "明",
    "静",
    "伟",
    "敏",
    "军",
    "芳",
    "磊",
    "娜",
    "涛",
    "霞",
    "勇",
    "艳",
    "杰",
    "慧",
    "斌",
    "婷",
    "鹏",
    "红",
    "超",
    "玲",
    "浩",
    "雪",
    "宇",
    "颖",
    "峰",
    "琳",
    "辉",
    "倩",
)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    display_name: str
    workspace: str
    role: str


def _name(i: int) -> str:
    return _SURNAMES[(i * 7) % len(_SURNAMES)] + _GIVEN[(i * 5) % len(_GIVEN)]


def _plan() -> list[tuple[str, str, Role]]:
    """(username, workspace slug, role) for every demo account."""
    plan: list[tuple[str, str, Role]] = [
        ("zx.clerk", "portal-centre", Role.CENTRE_CLERK),
        ("zx.reviewer", "portal-centre", Role.CENTRE_REVIEWER),
        ("zx.admin", "portal-centre", Role.CENTRE_ADMIN),
        ("sysadmin", "portal-centre", Role.SYSTEM_ADMIN),
        ("dc.supervisor", "city-office", Role.SUPERVISOR),
        ("city.leader", "city-office", Role.CITY_LEADER),
        ("dc.admin", "city-office", Role.UNIT_ADMIN),
    ]
    for slug in DEMO_UNITS:
        for role, suffix in (
            (Role.HANDLER, "handler"),
            (Role.DEPUTY, "deputy"),
            (Role.PRINCIPAL, "principal"),
            (Role.UNIT_ADMIN, "admin"),
        ):
            plan.append((f"{slug}.{suffix}", slug, role))
    # A leader with two posts: deputy in Kailu county and handler at the city education bureau.
    plan.append(("two.posts", "kailu", Role.DEPUTY))
    plan.append(("two.posts", "education", Role.HANDLER))
    return plan


def load_demo(db: Session) -> list[DemoLogin]:
    import_units(db, get_settings().data_dir / "tongliao_units.csv")
    workspaces = {w.slug: w for w in db.scalars(select(Workspace))}
    for i, ws in enumerate(workspaces.values()):
        if not ws.contact_phone:
            ws.contact_phone = f"0475-{8210000 + i * 37:07d}"
    password_hash = hash_password(DEMO_PASSWORD)
    logins: list[DemoLogin] = []
    users: dict[str, User] = {u.username: u for u in db.scalars(select(User))}
    for i, (username, slug, role) in enumerate(_plan()):
        ws = workspaces[slug]
        user = users.get(username)
        if user is None:
            user = User(
                username=username,
                display_name=_name(i + 3),
                password_hash=password_hash,
                office_phone=f"0475-{8300000 + i * 11:07d}",
                email=f"{username}@tongliao.example",
            )
            db.add(user)
            db.flush()
            users[username] = user
        grant = db.scalar(
            select(Membership).where(
                Membership.workspace_id == ws.id, Membership.user_id == user.id, Membership.role == role.value
            )
        )
        if grant is None:
            db.add(Membership(workspace_id=ws.id, user_id=user.id, role=role.value))
        logins.append(DemoLogin(username, user.display_name, ws.short_name, role.label))
    db.flush()
    return logins
