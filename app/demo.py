"""Demo data: every unit of Tongliao as a workspace and one person per role in the demo units.

Idempotent: running it again changes nothing that is already there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.accounts.passwords import hash_password
from app.permissions import Role
from app.settings import get_settings
from app.tenants.models import Membership, Workspace
from app.tenants.services import import_units

if TYPE_CHECKING:
    from app.accounts.identity import CurrentUser
    from app.cases.models import Case

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


def load_demo(db: Session, *, cases: bool = True) -> list[DemoLogin]:
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
    _demo_sections(db, workspaces)
    if cases:
        load_demo_cases(db)
    return logins


# --- demo cases, taken through the real workflow ---------------------------------------------------

_MESSAGES = [
    (
        "TL-2026-110301",
        "consult",
        "科尔沁区",
        "城乡建设",
        "明仁小区供暖温度不达标",
        "入冬以来我家所在的科尔沁区明仁小区3号楼室温一直只有15度左右，多次给热力公司打电话没有结果，"
        "家里有老人和孩子，请领导帮忙协调解决。",
    ),
    (
        "TL-2026-110302",
        "suggest",
        "奈曼旗",
        "交通运输",
        "建议修缮大沁他拉镇至八仙筒镇道路",
        "大沁他拉镇至八仙筒镇的县道多处坑洼，雨雪天气通行困难，建议有关部门尽快修缮。",
    ),
    (
        "TL-2026-110303",
        "help",
        "开鲁县",
        "教育",
        "随迁子女入学手续咨询",
        "我们一家从外地来开鲁县务工，孩子明年上小学，请问需要准备哪些材料，到哪里办理？",
    ),
    (
        "TL-2026-110304",
        "complain",
        "科尔沁区",
        "市场监管",
        "农贸市场缺斤短两",
        "在科尔沁区某农贸市场买菜多次遇到缺斤短两，希望加强监管。",
    ),
    ("TL-2026-110305", "other", "", "", "你好", "无具体内容。"),
    (
        "TL-2026-110306",
        "consult",
        "科尔沁区",
        "教育",
        "市区学校课后服务收费标准",
        "请问市区小学课后服务的收费标准是多少？是否自愿参加？",
    ),
    (
        "TL-2026-110307",
        "consult",
        "",
        "税务",
        "个体工商户电子发票开具咨询",
        "个体工商户如何在电子税务局开具数电发票？需要先办理什么手续？",
    ),
]


def demo_signature_png() -> str:
    """A drawn-looking signature as a PNG data URL (what the signature pad sends)."""
    import base64
    import io
    import math

    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (480, 160), (255, 255, 255, 0))
    draw = ImageDraw.Draw(img)
    points = [(40 + x * 4, 90 + 28 * math.sin(x / 6) * math.cos(x / 17)) for x in range(100)]
    draw.line(points, fill=(20, 20, 20, 255), width=4, joint="curve")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _actor(db: Session, username: str, slug: str):  # type: ignore[no-untyped-def]
    from app.accounts.identity import CurrentUser
    from app.accounts.services import posts_of

    user = db.scalar(select(User).where(User.username == username))
    assert user is not None
    posts = posts_of(db, user.id)
    post = next(p for p in posts if p.slug == slug)
    return CurrentUser(user.id, user.username, user.display_name, "demo", False, posts, post, "demo")


_CITIZENS = ["王先生", "李女士", "张先生", "刘女士", "赵先生", "陈女士", "周先生"]


def load_demo_cases(db: Session) -> int:
    """A few messages in every stage of the workflow, unless there are cases already (besides the
    demo's history)."""
    from app.cases.models import Assignment, Case
    from app.workflows.engine import apply

    history = [message[0] for message, _, _ in _HISTORY]
    if db.scalar(select(Case.id).where(Case.source_id.not_in(history)).limit(1)) is not None:
        return 0
    clerk = _actor(db, "zx.clerk", "portal-centre")
    reviewer = _actor(db, "zx.reviewer", "portal-centre")
    units = {w.slug: w.id for w in db.scalars(select(Workspace))}
    cases = []
    for i, message in enumerate(_MESSAGES):
        cases.append(
            _register(
                db,
                clerk,
                message,
                board="mayor" if i % 3 else "chairman",
                posted_at=f"2026-11-{20 + i % 5:02d} 09:{10 + i:02d}",
                citizen=(_CITIZENS[i], f"1384751{1000 + i * 37:04d}"),
            )
        )
    heating, road, school, _market, empty, fees, invoice = cases
    from app.cases.attachments import add_attachment

    add_attachment(db, clerk, heating, "室温照片.png", _demo_photo())
    apply(
        db,
        clerk,
        heating,
        "dispatch",
        lead_unit_id=units["horqin"],
        co_unit_ids=[units["housing"]],
        instructions="请尽快核实供暖情况并答复网民。",
    )
    apply(db, clerk, road, "dispatch", lead_unit_id=units["naiman"], co_unit_ids=[])
    apply(db, clerk, invoice, "dispatch", lead_unit_id=units["tax"], co_unit_ids=[])
    apply(
        db,
        clerk,
        empty,
        "decline",
        reason="unlawful_abusive",
        explanation="留言无实质内容。",
        suggestion="如有具体诉求，请详细描述后重新留言。",
    )
    # One message taken all the way: dispatched, received, drafted, signed and sealed, published.
    apply(db, clerk, fees, "dispatch", lead_unit_id=units["education"], co_unit_ids=[])
    assignment = db.scalar(select(Assignment).where(Assignment.case_id == fees.id))
    assert assignment is not None
    handler = _actor(db, "education.handler", "education")
    principal = _actor(db, "education.principal", "education")
    apply(db, handler, assignment, "receive")
    apply(
        db,
        handler,
        assignment,
        "save_draft",
        reply_text=(
            "网民朋友您好：经核实，我市中小学课后服务坚持学生自愿参加原则，收费标准按照市发展改革委、"
            "市教育局联合印发的文件执行，每生每学期不超过300元，家庭经济困难学生免收。感谢您的关注。"
        ),
    )
    apply(db, handler, assignment, "request_signoff")
    apply(db, principal, assignment, "sign", signature=demo_signature_png())
    apply(db, reviewer, fees, "publish")
    _ = school
    db.flush()
    return len(cases)


# --- the demo's past: messages left unanswered, and the deadline sweeps of every morning since ----

# ((source id, category, region, topic, title, body), lead unit, working days before the last
# working day on which the centre dispatched it). Due 5 working days after dispatch (第十条), so:
# 9 days ago: 4 days overdue — 提醒单, 催办单, the 2nd 催办单 and the 督办单 (第十九条);
# 6 days ago: due the day before — 提醒单, then 催办单 on the first overdue working day;
# 4 days ago: due the next working day — 提醒单 (第十三条).
_HISTORY = [
    (
        (
            "TL-2026-110308",
            "complain",
            "开鲁县",
            "城乡建设",
            "开鲁县城区多处路灯长期不亮",
            "开鲁县城区建设路、民主路一带多处路灯已经一个多月不亮，晚上出行很不安全，"
            "反映给社区后一直没有修好，请有关部门尽快维修。",
        ),
        "kailu",
        9,
    ),
    (
        (
            "TL-2026-110309",
            "suggest",
            "科尔沁区",
            "卫生健康",
            "建议社区卫生服务中心周末开诊",
            "我家附近的社区卫生服务中心周六、周日不开诊，老人周末看病、取药只能去大医院排队，"
            "建议周末安排医生值班。",
        ),
        "health",
        6,
    ),
    (
        (
            "TL-2026-110310",
            "help",
            "科尔沁区",
            "城乡建设",
            "小区门前人行道积雪未清理",
            "科尔沁区胜利小区门前人行道的积雪几天都没人清理，已经结冰，老人孩子出门容易滑倒，"
            "请帮忙协调清理。",
        ),
        "horqin",
        4,
    ),
]


def _register(
    db: Session,
    clerk: CurrentUser,
    message: tuple[str, ...],
    *,
    board: str,
    posted_at: str,
    citizen: tuple[str, str],
) -> Case:
    """Register one of the demo's messages as the centre's clerk does."""
    from app.cases.services import MessageInput, register_case

    source, category, region, topic, title, body = message
    return register_case(
        db,
        clerk,
        MessageInput(
            board=board,
            source_id=source,
            title=title,
            body=body,
            posted_at=posted_at,
            category=category,
            topic=topic,
            region=region,
            citizen_name=citizen[0],
            citizen_phone=citizen[1],
        ),
    )


def load_full_demo(today: date | None = None) -> list[DemoLogin]:
    """What ``minpan demo`` and ``minpan up`` load: the units and people, the demo's history (into a
    database without cases), then a few messages in every stage; each step committed."""
    from app.db import system_session

    with system_session() as db:
        logins = load_demo(db, cases=False)
    load_demo_history(today)
    with system_session() as db:
        load_demo_cases(db)
    return logins


def _local(day: date, hour: int, minute: int) -> datetime:
    """``day`` at ``hour:minute`` in the portal's time zone."""
    return datetime.combine(day, time(hour, minute), ZoneInfo(get_settings().timezone))


def load_demo_history(today: date | None = None) -> int:
    """Three messages dispatched on earlier working days and not answered since, each taken
    through the real workflow as of its day, then the deadline sweep of every morning since the
    first, as of that morning: the supervision office sees the ladder (提醒单, 催办单, 督办单) as
    the sweeps left it, each unit's principal the notices, each case page its timeline. Only into
    a database without cases, before ``load_demo_cases`` (the earlier dispatched the lower the
    承办单's number); the sweep of ``today`` (the real one) is left to the scheduler or ``minpan
    sweep``. Returns how many messages it added."""
    from app.calendar import days
    from app.cases.models import Assignment, Case
    from app.db import as_of, system_session
    from app.escalation.services import sweep
    from app.workflows.engine import apply

    today = today or datetime.now(ZoneInfo(get_settings().timezone)).date()
    with system_session() as db:
        if db.scalar(select(Case.id).limit(1)) is not None:
            return 0
    calendar = days.current()
    last = today if calendar.is_working_day(today) else calendar.previous_working_day(today)
    first = last
    for i, (message, slug, ago) in enumerate(_HISTORY):
        day = last
        for _ in range(ago):
            day = calendar.previous_working_day(day)
        first = min(first, day)
        with as_of(_local(day, 9, 30)), system_session() as db:
            clerk = _actor(db, "zx.clerk", "portal-centre")
            case = _register(
                db,
                clerk,
                message,
                board="mayor",
                posted_at=f"{calendar.previous_working_day(day):%Y-%m-%d} 20:{15 + i * 7:02d}",
                citizen=(["孙女士", "吴先生", "郑女士"][i], f"1394752{2000 + i * 41:04d}"),
            )
            unit = db.scalar(select(Workspace.id).where(Workspace.slug == slug))
            apply(db, clerk, case, "dispatch", lead_unit_id=unit, co_unit_ids=[])
            assignment = db.scalar(select(Assignment).where(Assignment.case_id == case.id))
            assert assignment is not None
        with as_of(_local(day, 10, 40)), system_session() as db:
            assignment = db.get_one(Assignment, assignment.id)
            apply(db, _actor(db, f"{slug}.handler", slug), assignment, "receive")
    day = first + timedelta(days=1)
    while day < today:
        with as_of(_local(day, 8, 0)):
            sweep(day, fan_out_now=True)
        day += timedelta(days=1)
    return len(_HISTORY)


def _demo_sections(db: Session, workspaces: dict[str, Workspace]) -> None:
    """Two offices (科室) in each demo unit (第七条)."""
    from app.tenants.models import Section

    for slug in DEMO_UNITS:
        ws = workspaces[slug]
        for name in ("综合科", "业务科"):
            exists = db.scalar(select(Section.id).where(Section.workspace_id == ws.id, Section.name == name))
            if exists is None:
                db.add(Section(workspace_id=ws.id, name=name))
    db.flush()


def _demo_photo() -> bytes:
    """A small picture standing in for the citizen's photo of the thermometer."""
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 200), (236, 240, 245))
    draw = ImageDraw.Draw(img)
    draw.rectangle((150, 20, 170, 160), outline=(90, 90, 90), width=3)
    draw.rectangle((154, 110, 166, 157), fill=(200, 30, 30))
    draw.ellipse((140, 150, 180, 190), fill=(200, 30, 30))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
