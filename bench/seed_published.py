"""Seed a PostgreSQL database with N published replies and their public index (default 1,000,000).

Usage:
    MINPAN_DATABASE_URL=postgresql+psycopg://minpan@127.0.0.1:5432/minpan_public_bench \
        .venv/bin/python -m bench.seed_published --published 1000000

Creates the database if it does not exist (owned by the app role), builds the schema through the
migrations and loads the demo units and people, then COPYs (as the superuser, see
bench/seed_cases.py) N cases as the centre's publish step leaves them — 30 % ``published``, 70 %
``archived`` — over five years, each answered by one of the 40 county, bureau and vertical units
(the unit fitting the topic), with a handler's name and office phone; 2 % answered privately
(第十八条), 1 % an explanation. Titles, messages and replies are made from a vocabulary of 20 kinds
of citizens' concerns over Tongliao's places; about a third of the messages carry personal data
(a name after 我叫, a mobile number, a flat, an ID card, a plate, an e-mail or a WeChat id) that
the portal masks, and 1 in 1,000 mentions one of a handful of rare subjects (for rare searches).

The public index rows (``public_entries``) are built by ``app.public.search.entry_values`` — the
same masking and bigram tokens as the publish step — in worker processes, and COPYed beside the
cases; the GIN full-text index (migration 0015) is dropped before the load and created after it.

Idempotent: a database whose comment records the same N is kept; --fresh drops and recreates a
database this script marked.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, text

from app import migrate
from app.db import get_engine, system_session
from app.demo import load_demo
from app.public.search import PG_TERMS, PG_TERMS_INDEX, entry_values
from bench.seed_cases import _copy, _line
from bench.seed_open_assignments import admin_url

MARKER = "minpan public bench"
CASE_ID_BASE = 10_000_000  # far above the demo's cases
NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # fixed, so that every seed of N is the same data
SPAN = 5 * 365 * 86400

PLACES = {
    "科尔沁区": (
        "horqin",
        ["明仁", "和平", "建国", "永清", "民主", "新城", "金桥", "西拉木伦", "清河", "铁南"],
    ),
    "霍林郭勒市": ("huolinguole", ["沙尔呼热", "莫斯台", "珠斯花", "宝日呼吉尔"]),
    "开鲁县": ("kailu", ["开鲁镇", "东风", "麦新", "黑龙坝"]),
    "科尔沁左翼中旗": ("horqin-left-middle", ["保康", "舍伯吐", "花吐古拉"]),
    "科尔沁左翼后旗": ("horqin-left-rear", ["甘旗卡", "吉尔嘎朗", "金宝屯"]),
    "库伦旗": ("hure", ["库伦镇", "额勒顺", "扣河子"]),
    "奈曼旗": ("naiman", ["大沁他拉", "八仙筒", "青龙山"]),
    "扎鲁特旗": ("jarud", ["鲁北", "巴彦塔拉", "道老杜"]),
    "开发区": ("etdz", ["辽河", "河西", "新工业园"]),
}
ROADS = [
    "和平路",
    "建国路",
    "永清大街",
    "霍林河大街",
    "科尔沁大街",
    "民主路",
    "交通路",
    "创业大道",
    "新工二路",
    "滨河大道",
]

# topic: (unit slug or "" for the county of the place, category weights, titles, message lines, reply lines)
TOPICS: dict[str, tuple[str, dict[str, int], list[str], list[str], list[str]]] = {
    "城乡建设": (
        "housing",
        {"complain": 5, "help": 3, "consult": 2},
        [
            "{xq}小区供暖温度不达标",
            "{xq}小区冬季供暖不热",
            "{xq}小区暖气管道漏水",
            "{xq}小区老旧管网改造何时进行",
        ],
        [
            "入冬以来室温一直只有{deg}度左右，家里有老人和孩子。",
            "多次给热力公司打电话没有结果，维修人员一直没有上门。",
            "暖气片上热下凉，晚上尤其冷，希望尽快派人检查管网。",
            "小区属于老旧小区，管道老化严重，请问是否列入改造计划？",
        ],
        [
            "经核实，该小区供暖管网末端压力不足，热力公司已完成调压，现室温已达{deg2}度以上。",
            "热力公司已安排维修人员入户排查，更换了老化阀门。",
            "该小区已列入明年老旧小区改造计划，届时将一并更换供热管网。",
        ],
    ),
    "物业管理": (
        "housing",
        {"complain": 6, "consult": 2, "help": 2},
        [
            "{xq}小区物业服务问题",
            "{xq}小区物业费收取不合理",
            "{xq}小区电梯经常故障",
            "{xq}小区垃圾清运不及时",
        ],
        [
            "物业公司服务质量差，楼道卫生长期无人打扫。",
            "电梯经常停运，住在高层的老人上下楼非常困难。",
            "物业费年年上涨，却没有公示收支情况。",
            "小区垃圾堆放多日无人清运，气味很大。",
        ],
        [
            "经调查，物业公司已整改楼道保洁，并承诺每日清扫。",
            "住建部门已约谈物业公司负责人，责令其限期维修电梯并公示维保记录。",
            "物业收费标准须经业主大会同意，住建部门将督促物业公司公示收支。",
        ],
    ),
    "交通运输": (
        "transport",
        {"suggest": 5, "complain": 3, "consult": 2},
        [
            "{road}道路坑洼需修缮",
            "建议增开{place}公交线路",
            "{road}路口信号灯配时不合理",
            "{place}至市区客运班车太少",
        ],
        [
            "{road}多处坑洼，雨雪天气通行困难，存在安全隐患。",
            "早晚高峰公交车非常拥挤，等车时间长。",
            "路口红灯时间过长，经常造成拥堵。",
            "希望有关部门尽快修缮道路，方便群众出行。",
        ],
        [
            "经现场勘查，该路段已列入本年度道路维修计划，预计下月完工。",
            "公交公司已根据客流情况调整发车间隔，高峰时段加密班次。",
            "交警部门已优化该路口信号灯配时。",
        ],
    ),
    "教育": (
        "education",
        {"consult": 6, "suggest": 2, "help": 2},
        ["{place}学校招生咨询", "随迁子女入学手续咨询", "市区学校课后服务收费标准", "{place}幼儿园学位紧张"],
        [
            "孩子明年上小学，请问需要准备哪些材料，到哪里办理？",
            "我们一家从外地来务工，孩子入学需要什么手续？",
            "课后服务是否自愿参加？收费标准是多少？",
            "附近幼儿园学位紧张，报名非常困难。",
        ],
        [
            "随迁子女入学须提供居住证明、务工证明和户口簿，到所在学区学校报名。",
            "课后服务坚持学生自愿参加原则，收费标准按照有关文件执行，家庭经济困难学生免收。",
            "教育部门正在推进新建幼儿园项目，明年秋季将新增学位。",
        ],
    ),
    "医疗卫生": (
        "health",
        {"consult": 4, "complain": 3, "suggest": 3},
        ["{place}医院挂号难", "社区卫生服务中心医生不足", "建议延长医院夜间门诊时间", "家庭医生签约服务咨询"],
        [
            "医院挂号排队时间很长，网上预约总是约不上。",
            "社区卫生服务中心只有两名医生，看病要等很久。",
            "上班族白天没有时间看病，希望开设夜间门诊。",
        ],
        [
            "医院已增加网上预约号源，并在门诊大厅设置自助挂号机。",
            "卫健部门将通过招聘和对口支援充实社区医生队伍。",
            "家庭医生签约可到户籍或居住地社区卫生服务中心办理。",
        ],
    ),
    "医疗保障": (
        "medical-security",
        {"consult": 7, "help": 3},
        ["医保报销咨询", "异地就医备案如何办理", "门诊慢特病认定咨询", "{place}医保报销比例疑问"],
        [
            "在外地住院的医保报销需要准备哪些材料？",
            "异地就医备案能否在手机上办理？",
            "家里老人患有慢性病，门诊费用能否报销？",
        ],
        [
            "异地就医备案可通过国家医保服务平台APP或到医保经办窗口办理。",
            "门诊慢特病认定需提交近期病历和检查报告，经专家评审后享受待遇。",
            "住院报销比例按医院等级和参保类别确定，详见医保局公布的政策。",
        ],
    ),
    "社会保障": (
        "hrss",
        {"consult": 6, "help": 4},
        ["养老金发放咨询", "灵活就业人员社保缴费咨询", "{place}企业拖欠工资", "失业保险金申领咨询"],
        [
            "退休后养老金什么时候开始发放？",
            "灵活就业人员如何缴纳养老保险？",
            "所在企业已拖欠工资三个月，多次讨要无果。",
        ],
        [
            "养老金自办理退休手续的次月起发放。",
            "灵活就业人员可通过社保APP或到社保经办机构办理参保缴费。",
            "劳动保障监察部门已立案调查，督促企业限期支付拖欠的工资。",
        ],
    ),
    "环境保护": (
        "ecology",
        {"complain": 7, "suggest": 3},
        ["噪音扰民", "{place}工厂排放异味", "{road}餐馆油烟扰民", "建筑工地夜间施工噪音大"],
        [
            "楼下烧烤店每晚营业到凌晨，噪音很大，影响休息。",
            "附近工厂经常排放刺鼻气味，居民不敢开窗。",
            "工地夜间施工，机械噪音持续到深夜。",
        ],
        [
            "生态环境部门已现场检查，责令商户安装油烟净化设施。",
            "执法人员对该企业排放情况进行了监测，已责令其限期整改。",
            "夜间施工须办理许可，执法部门已责令工地停止违规夜间施工。",
        ],
    ),
    "城市管理": (
        "urban-management",
        {"complain": 5, "suggest": 5},
        ["{road}路灯不亮", "{road}占道经营严重", "{xq}小区门口违章停车", "建议增设{place}公共厕所"],
        [
            "{road}路灯已经坏了一个多月，晚上行走很不安全。",
            "人行道被摊贩占用，行人只能走机动车道。",
            "小区门口长期有车辆违章停放，消防通道被堵。",
        ],
        [
            "城管部门已安排维修，路灯已恢复照明。",
            "执法人员已对占道经营进行了清理，并将加强巡查。",
            "已在该区域施划停车位并设置禁停标志。",
        ],
    ),
    "市场监管": (
        "market-regulation",
        {"complain": 8, "consult": 2},
        ["农贸市场缺斤短两", "{place}超市销售过期食品", "预付卡商家跑路", "网购商品质量投诉"],
        [
            "在农贸市场买菜多次遇到缺斤短两，希望加强监管。",
            "在超市买到过期食品，商家拒绝退换。",
            "办理的健身卡商家突然关门，余额无法退还。",
        ],
        [
            "市场监管部门已对该市场的计量器具进行检定，查处了作弊商户。",
            "执法人员已对该超市进行检查，责令下架过期食品并依法处罚。",
            "预付卡纠纷已立案处理，市场监管部门将协调商家退款。",
        ],
    ),
    "税务": (
        "tax",
        {"consult": 9, "other": 1},
        ["个体工商户电子发票开具咨询", "个人所得税汇算清缴咨询", "小规模纳税人减免政策咨询"],
        [
            "个体工商户如何在电子税务局开具数电发票？",
            "个人所得税年度汇算需要退税，如何办理？",
            "小规模纳税人增值税减免政策什么时候到期？",
        ],
        [
            "可登录电子税务局，在开票业务模块开具数电发票。",
            "个人所得税年度汇算可通过个人所得税APP办理。",
            "相关减免政策执行至规定期限，请关注税务部门公告。",
        ],
    ),
    "供电": (
        "power-supply",
        {"complain": 6, "consult": 4},
        ["{xq}小区频繁停电", "{place}农村电压不稳", "电费缴纳方式咨询"],
        ["最近一个月停电好几次，事先没有通知。", "电压不稳，家里电器经常跳闸。"],
        ["供电公司已更换故障变压器，供电已恢复正常。", "供电公司已对该台区进行增容改造。"],
    ),
    "供水": (
        "water",
        {"complain": 7, "consult": 3},
        ["{xq}小区自来水发黄", "{place}停水未提前通知", "农村饮水安全问题"],
        ["家里自来水发黄，有异味，不敢饮用。", "停水前没有任何通知，生活很不方便。"],
        ["供水公司已冲洗管网并检测水质，水质符合国家标准。", "今后计划停水将提前在小区公告。"],
    ),
    "农牧业": (
        "agriculture",
        {"consult": 5, "help": 5},
        ["{place}玉米种植补贴咨询", "牧区草场补贴何时发放", "肉牛养殖贷款咨询"],
        ["今年的种植补贴什么时候发放？", "肉牛养殖户想扩大规模，请问有没有贴息贷款？"],
        ["补贴资金已下拨至各旗县，将于近期发放到户。", "符合条件的养殖户可向当地农牧部门申请贴息贷款。"],
    ),
    "民政": (
        "civil-affairs",
        {"help": 7, "consult": 3},
        ["低保申请咨询", "{place}养老院收费问题", "残疾人补贴申领咨询"],
        ["家庭困难，请问如何申请最低生活保障？", "老人想入住养老院，收费标准是多少？"],
        ["可向户籍所在地苏木乡镇（街道）提出低保申请。", "公办养老机构收费标准已在民政局网站公布。"],
    ),
    "公安": (
        "public-security",
        {"consult": 6, "help": 4},
        ["户口迁移手续咨询", "身份证异地办理咨询", "{road}交通秩序混乱"],
        ["户口从外地迁入需要哪些材料？", "身份证丢失后能否在通辽异地补办？"],
        ["户口迁入可到居住地派出所办理，所需材料见公安局公告。", "身份证可在全国范围异地办理。"],
    ),
    "不动产登记": (
        "natural-resources",
        {"consult": 6, "complain": 4},
        ["{xq}小区房产证迟迟办不下来", "不动产登记办理时限咨询"],
        ["小区交房已经五年，房产证一直办不下来。", "办理不动产登记需要多长时间？"],
        ["经核实，开发企业已补齐手续，不动产登记中心将集中为业主办证。", "一般登记业务在5个工作日内办结。"],
    ),
    "住房公积金": (
        "housing-fund",
        {"consult": 10},
        ["住房公积金提取咨询", "公积金贷款额度咨询"],
        ["租房能否提取住房公积金？", "公积金贷款最高额度是多少？"],
        ["租房提取可通过公积金中心网上服务大厅办理。", "贷款额度按缴存余额和还款能力计算。"],
    ),
    "文化旅游": (
        "culture-tourism",
        {"suggest": 7, "consult": 3},
        ["建议开放{place}体育场馆", "{place}景区门票价格咨询"],
        ["学校体育场馆周末能否向社会开放？", "景区门票对老年人有没有优惠？"],
        ["部分学校体育场馆已在周末向社会开放。", "65周岁以上老年人凭身份证可免费游览。"],
    ),
    "政务服务": (
        "approval-services",
        {"suggest": 5, "complain": 5},
        ["政务服务大厅办事排队久", "营业执照网上办理咨询"],
        ["政务服务大厅窗口少，办事要排很长时间的队。", "营业执照能否全程网上办理？"],
        ["政务服务大厅已增设综合窗口，推行延时服务。", "营业执照可通过政务服务网全程网办。"],
    ),
}
RARE = ["蒙医药", "沙尘暴预警", "草原防火", "那达慕", "冰雪节", "骆驼养殖", "蒙古语授课"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡包白乌宝"
GIVEN = "建国秀英海燕志强丽娜明俊红梅桂兰晓东玉兰伟军春花国华金山巴特其其格"
OPENINGS = ["尊敬的领导您好：", "市长您好！", "您好，", "尊敬的市长：", ""]
CLOSINGS = ["希望有关部门尽快解决。", "恳请领导帮忙协调解决。", "谢谢！", "望尽快给予答复。", ""]
REPLY_OPEN = ["网民朋友您好：", "您好！", "尊敬的网民："]
REPLY_CLOSE = ["感谢您对我市工作的关注和支持。", "感谢您的监督。", "如有疑问，请联系经办人。"]
CASE_COLUMNS = (
    "id",
    "workspace_id",
    "state",
    "version",
    "board",
    "source_id",
    "title",
    "body",
    "posted_at",
    "category",
    "topic",
    "region",
    "citizen_name",
    "citizen_phone",
    "citizen_email",
    "registered_at",
    "decline_reason",
    "decline_explanation",
    "decline_suggestion",
    "sheet_number",
    "dispatched_at",
    "due_date",
    "instructions",
    "reply_text",
    "reply_private",
    "reply_is_explanation",
    "reply_unit_id",
    "reply_handler_name",
    "reply_handler_phone",
    "reply_signed_by",
    "reply_signature",
    "reply_submitted_at",
    "quality_flag",
    "published_at",
    "archived_at",
)
ENTRY_COLUMNS = (
    "case_id",
    "kind",
    "published_at",
    "posted_at",
    "unit_id",
    "category",
    "topic",
    "region",
    "title",
    "body",
    "answer",
    "terms",
    "indexed_at",
)


@dataclass(frozen=True)
class Row:
    """The columns ``entry_values`` reads (``app.public.search._SOURCE``)."""

    id: int
    state: str
    title: str
    body: str
    posted_at: datetime
    category: str
    topic: str
    region: str
    reply_text: str
    reply_private: bool
    reply_unit_id: int
    reply_handler_name: str
    reply_handler_phone: str
    published_at: datetime
    decline_reason: str = ""
    decline_explanation: str = ""
    decline_suggestion: str = ""


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice((1, 2))))


def _mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"


def _personal(rng: random.Random, place: str, xq: str) -> str:
    """One sentence with personal data the portal masks."""
    kind = rng.randrange(7)
    if kind == 0:
        return f"我叫{_name(rng)}，电话{_mobile(rng)}。"
    if kind == 1:
        flat = f"{rng.randint(1, 30)}号楼{rng.randint(1, 6)}单元{rng.randint(1, 18)}0{rng.randint(1, 4)}室"
        return f"我家住{place}{xq}小区{flat}。"
    if kind == 2:
        mobile, county = _mobile(rng), f"1505{rng.randrange(10**2):02d}"  # (the draws in this order)
        born = f"19{rng.randint(50, 99)}0{rng.randint(1, 9)}{rng.randint(10, 28)}"
        return f"联系电话：{mobile}，身份证号{county}{born}{rng.randrange(10**4):04d}。"
    if kind == 3:
        return f"车牌号蒙G·{rng.randrange(10**5):05d}的车辆长期占用消防通道。"
    if kind == 4:
        return (
            f"我的邮箱是{rng.choice(['zhang', 'liu', 'wang', 'bao'])}{rng.randrange(10**4)}@qq.com，盼回复。"
        )
    if kind == 5:
        return f"我父亲{_name(rng)}，今年{rng.randint(60, 90)}岁。微信号tl{rng.randrange(10**6):06d}。"
    name = _name(rng)
    mobile = f"{_mobile(rng)[:3]} {rng.randrange(10**4):04d} {rng.randrange(10**4):04d}"
    return f"联系人：{name}女士，手机{mobile}。"


def _fill(template: str, rng: random.Random, place: str, xq: str, road: str) -> str:
    return template.format(place=place, xq=xq, road=road, deg=rng.randint(12, 16), deg2=rng.randint(18, 22))


def make_case(cid: int, rng: random.Random, units: dict[str, int]) -> tuple[str, str]:
    """One published case's COPY line and its index row's COPY line."""
    topic = rng.choice(list(TOPICS))
    unit_slug, categories, titles, lines, answers = TOPICS[topic]
    region = rng.choice(list(PLACES))
    county, estates = PLACES[region]
    if topic in ("交通运输", "城市管理", "物业管理") and rng.random() < 0.5:
        unit_slug = county  # the county answers for its own streets and estates
    xq, road = rng.choice(estates), rng.choice(ROADS)
    title = _fill(rng.choice(titles), rng, region, xq, road)
    parts = [rng.choice(OPENINGS), f"我是{region}{xq}的居民。"]
    parts += [
        _fill(line, rng, region, xq, road) for line in rng.sample(lines, min(len(lines), rng.randint(2, 3)))
    ]
    if rng.random() < 0.35:
        parts.insert(rng.randint(1, len(parts)), _personal(rng, region, xq))
    if rng.random() < 0.001:
        parts.append(f"另外想反映一下{rng.choice(RARE)}的问题。")
    parts.append(rng.choice(CLOSINGS))
    body = "".join(parts)
    handler, handler_phone = _name(rng), f"0475-8{rng.randrange(10**6):06d}"
    answer = [rng.choice(REPLY_OPEN), f"您反映的“{title}”问题收悉。"]
    answer += [
        _fill(a, rng, region, xq, road) for a in rng.sample(answers, min(len(answers), rng.randint(1, 2)))
    ]
    answer.append(f"如有疑问，请联系经办人{handler}，电话{handler_phone}。{rng.choice(REPLY_CLOSE)}")
    reply_text = "".join(answer)
    registered = NOW - timedelta(days=10, seconds=rng.randrange(SPAN))  # published by NOW
    posted = registered - timedelta(minutes=rng.randint(10, 600))
    dispatched = registered + timedelta(hours=rng.randint(1, 20))
    submitted = dispatched + timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 8))
    published = submitted + timedelta(hours=rng.randint(1, 8))
    state = "archived" if rng.random() < 0.7 else "published"
    private = rng.random() < 0.02
    category = rng.choices(list(categories), weights=list(categories.values()))[0]
    row = Row(
        id=cid,
        state=state,
        title=title,
        body=body,
        posted_at=posted,
        category=category,
        topic=topic,
        region=region,
        reply_text=reply_text,
        reply_private=private,
        reply_unit_id=units[unit_slug],
        reply_handler_name=handler,
        reply_handler_phone=handler_phone,
        published_at=published,
    )
    case = {
        "id": cid,
        "workspace_id": units["portal-centre"],
        "state": state,
        "version": 9,
        "board": "mayor",
        "source_id": f"PB-{cid}",
        "title": title,
        "body": body,
        "posted_at": posted.isoformat(),
        "category": category,
        "topic": topic,
        "region": region,
        "citizen_name": _name(rng),
        "citizen_phone": _mobile(rng),
        "registered_at": registered.isoformat(),
        "sheet_number": f"通留〔{registered.year}〕P{cid}号",
        "dispatched_at": dispatched.isoformat(),
        "due_date": (dispatched + timedelta(days=7)).date().isoformat(),
        "reply_text": reply_text,
        "reply_private": str(private).lower(),
        "reply_is_explanation": str(rng.random() < 0.01).lower(),
        "reply_unit_id": units[unit_slug],
        "reply_handler_name": handler,
        "reply_handler_phone": handler_phone,
        "reply_signed_by": _name(rng),
        "reply_submitted_at": submitted.isoformat(),
        "published_at": published.isoformat(),
        "archived_at": (published + timedelta(days=30)).isoformat() if state == "archived" else None,
    }
    entry = entry_values(None, row)  # type: ignore[arg-type]  # a reply: no query is made
    entry = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in entry.items()}
    return _line(case, CASE_COLUMNS), _line(_escape_all(entry), ENTRY_COLUMNS)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _escape_all(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _escape(v) if isinstance(v, str) else v for k, v in values.items()}


def make_batch(args: tuple[int, int, dict[str, int]]) -> tuple[str, str]:
    """Cases ``start`` … ``start + n - 1``: deterministic per batch, whatever process makes it."""
    start, n, units = args
    rng = random.Random(start)
    cases, entries = [], []
    for cid in range(start, start + n):
        case, entry = make_case(cid, rng, units)
        cases.append(case)
        entries.append(entry)
    return "".join(cases), "".join(entries)


# --- database --------------------------------------------------------------------------------------


def marker_text(total: int) -> str:
    return f"{MARKER}: published={total}"


def _comment(conn: Any, name: str) -> str | None:
    comment = conn.execute(
        text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"), {"n": name}
    ).scalar()
    return str(comment) if comment is not None else None


def ensure_database(fresh: bool) -> bool:
    """Create the bench database unless it exists; True when it is already seeded for N (checked by
    the caller through the comment)."""
    url = get_engine().url
    name, owner = url.database, url.username
    assert name and owner and name.replace("_", "").isalnum(), name
    if name in ("minpan_test", "minpan"):
        raise SystemExit(f"refusing to seed {name}")
    server = create_engine(admin_url("postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
        if found and fresh:
            comment = _comment(conn, name)
            if comment and not comment.startswith(MARKER):
                raise SystemExit(f"{name} is not a public bench database; not dropping it")
            get_engine().dispose()
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            found = None
        if not found:
            conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{owner}"'))
            print(f"created database {name}")
    server.dispose()
    return bool(found)


def seeded_for() -> int | None:
    with create_engine(admin_url()).connect() as conn:
        comment = _comment(conn, str(get_engine().url.database))
    if not comment or not comment.startswith(MARKER):
        return None
    return int(comment.rsplit("=", 1)[1])


def _batches(total: int, batch: int, units: dict[str, int]) -> Iterator[tuple[int, int, dict[str, int]]]:
    for offset in range(0, total, batch):
        yield CASE_ID_BASE + offset, min(batch, total - offset), units


def seed(total: int, *, fresh: bool = False, batch: int = 20_000, processes: int | None = None) -> None:
    ensure_database(fresh)
    if seeded_for() == total:
        print(f"already seeded: {total:,} published replies")
        return
    migrate.upgrade()
    with system_session() as db:
        load_demo(db)
    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('minpan.system', 'on', true)"))
        units = {slug: wid for slug, wid in conn.execute(text("SELECT slug, id FROM workspaces"))}
        leftover = conn.execute(
            text("SELECT count(*) FROM cases WHERE id >= :b"), {"b": CASE_ID_BASE}
        ).scalar()
    admin = create_engine(admin_url())
    started = time.perf_counter()
    with admin.begin() as conn:
        if leftover:  # an interrupted seed: start again
            conn.execute(text("DELETE FROM public_entries WHERE case_id >= :b"), {"b": CASE_ID_BASE})
            conn.execute(text("DELETE FROM cases WHERE id >= :b"), {"b": CASE_ID_BASE})
        # Migration 0020's narrow search table is filled after the COPY, newest rows last (as
        # publication appends them), and its indexes built once.
        conn.execute(text("ALTER TABLE public_entries DISABLE TRIGGER public_entries_terms"))
        conn.execute(text(f"DROP INDEX IF EXISTS {PG_TERMS_INDEX}"))
        conn.execute(text("DROP INDEX IF EXISTS ix_public_terms_published"))
        conn.execute(text(f"TRUNCATE {PG_TERMS}"))
    made = 0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes or os.cpu_count() or 2) as pool:
        for cases, entries in pool.imap(make_batch, _batches(total, batch, units)):
            with admin.begin() as conn:
                _copy(conn, "cases", list(CASE_COLUMNS), io.StringIO(cases))
                _copy(conn, "public_entries", list(ENTRY_COLUMNS), io.StringIO(entries))
            made += cases.count("\n")
            if made % 100_000 < batch:
                print(f"{made:>9,} cases  {time.perf_counter() - started:6.1f} s", flush=True)
    print("filling the search table and creating the full-text index …", flush=True)
    with admin.begin() as conn:
        conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        conn.execute(
            text(
                f"INSERT INTO {PG_TERMS} (case_id, kind, published_at, unit_id, category, tsv) "  # noqa: S608
                "SELECT case_id, kind, published_at, unit_id, category, "
                "to_tsvector('simple'::regconfig, terms) FROM public_entries ORDER BY published_at, case_id"
            )
        )
        print(f"search table filled at {time.perf_counter() - started:6.1f} s", flush=True)
        # (the full-text index of migration 0032: the words, and the month of each row)
        month = "public_terms_month(published_at)"
        conn.execute(text(f"CREATE INDEX {PG_TERMS_INDEX} ON {PG_TERMS} USING gin (tsv, {month})"))
        conn.execute(text(f"CREATE INDEX ix_public_terms_published ON {PG_TERMS} (published_at, case_id)"))
        conn.execute(text("ALTER TABLE public_entries ENABLE TRIGGER public_entries_terms"))
        # 页面静态化: an empty page row per reply (rendered on first visit), as migration 0020 makes.
        conn.execute(
            text(
                "INSERT INTO public_pages (case_id, unit_id, generation, etag, render_version) "
                "SELECT case_id, unit_id, 0, '', '' FROM public_entries WHERE kind = 'reply' "
                "ON CONFLICT (case_id) DO NOTHING"
            )
        )
        conn.execute(
            text("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))")
        )
    print(f"index built at {time.perf_counter() - started:6.1f} s", flush=True)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        conn.execute(text(f"COMMENT ON DATABASE \"{engine.url.database}\" IS '{marker_text(total)}'"))
    admin.dispose()
    print(f"seeded {total:,} published replies and their index rows in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--published", type=int, default=1_000_000, help="published replies")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate a bench database")
    parser.add_argument("--processes", type=int, default=None, help="processes making the rows")
    args = parser.parse_args()
    seed(args.published, fresh=args.fresh, processes=args.processes)


if __name__ == "__main__":
    main()
