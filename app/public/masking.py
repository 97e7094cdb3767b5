"""Masking of personal data in everything the public portal shows (第七条, 第十八条).

``mask(text)`` is pure, idempotent (``mask(mask(t)) == mask(t)``) and made of precompiled regular
expressions run one after the other. It runs on every text the public sees: titles, messages,
replies, declined explanations, search snippets, and on the text stored in the search index, so a
snippet can never show more than the page.

The rules, in the order they run (digits may be half- or full-width, ``0-9`` / ``０-９``; a
"separator" is one space, ideographic space or dash between digits):

========================  ====================================  ==================================
what                      example                               shown as
========================  ====================================  ==================================
e-mail address            zhangsan@qq.com                       z***@qq.com (domain kept)
QQ / 微信 / wx id          QQ：12345678, 微信号 zs_1990          QQ：1*******, 微信号 z*****
ID card, 18 or 15 digits  110105199001011234 (also 6-8-4,       110***********1234 (first 3 and
                          6-4-4-4 with separators, final X)     last 4 kept)
bank card, 16–19 digits   6222 0212 3456 7890 123               **** **** **** ***0 123 → only the
                                                                last 4 digits kept
mobile (+86, 0086, (+86)) 138 4751 1000, +86-13847511000        138 **** 1000, +86-138****1000
landline with area code   0475-8212345, (0475)82123456          0475-*****45 (area code and last 2)
number after 电话/手机/    电话：821-2345                        电话：***-**45
联系方式/座机/tel
licence plate             蒙G·12345, 蒙GD12345                  蒙G·***45, 蒙G****45
house number              3号楼2单元502室, 3号楼502, 3-2-502     *号楼*单元***室, *号楼***, *-*-***
any other run of ≥ 7      户号 12345678                         户号 ******78
digits
name after 我叫/姓名/      我叫张三，姓名：欧阳娜娜               我叫张**，姓名：欧阳**
联系人/留言人/户主/申请人
name after 我是/本人/我父  我是李明。我父亲王建国，               我是李**。我父亲王**，
亲… (only before a
punctuation mark or 的)
name before an honorific  张三先生, 王小红女士                   张**先生, 王**女士
========================  ====================================  ==================================

Kept on purpose: a surname with an honorific alone (张女士, 王先生: it names nobody), amounts and
quantities (1200元, 3500000元, 15度, 300平方米), dates and years (2026-11-27, 20261127, 2026年),
document numbers (通留〔2026〕12号), decimals, street numbers (和平路58号: mostly offices and shops).
A name written with no cue at all ("张三反映…") cannot be told from ordinary words and is not
masked; the centre's reviewer reads every message before it is published (第七条).

``keep`` protects exact strings from masking, for the reply text: the handler's name and office
phone and the unit's contact phone are published on purpose (第十二条).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

_D: Final = "[0-9０-９]"
_SEP: Final = "[ \u00a0\u3000\\-‐‑–—－]"
_NO_DIGIT_BEFORE: Final = "(?<![0-9０-９])"
_NO_DIGIT_AFTER: Final = "(?![0-9０-９])"
_ALNUM: Final = "A-Za-z0-9Ａ-Ｚａ-ｚ０-９"
_CJK: Final = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_DIGITS: Final = frozenset("0123456789０１２３４５６７８９")


def _star_digits(text: str, head: int = 0, tail: int = 0) -> str:
    """Replace every digit of ``text`` by '*' except the first ``head`` and the last ``tail``."""
    positions = [i for i, ch in enumerate(text) if ch in _DIGITS or ch in "XxＸｘ"]
    keep = set(positions[:head]) | set(positions[len(positions) - tail :] if tail else [])
    return "".join("*" if i in positions and i not in keep else ch for i, ch in enumerate(text))


# --- e-mail and messenger ids ----------------------------------------------------------------------

_EMAIL: Final = re.compile(
    rf"(?<![{_ALNUM}._%+\-])([{_ALNUM}][{_ALNUM}._%+\-]*)([@＠][{_ALNUM}][{_ALNUM}\-]*(?:[.．][{_ALNUM}\-]+)+)"
)


def _email(m: re.Match[str]) -> str:
    return m.group(1)[0] + "***" + m.group(2)


_MESSENGER: Final = re.compile(
    r"((?:QQ|qq|ＱＱ|微信号?|[Vv][Xx]|[Ww][Xx]|微博)(?:号码|号)?[ \u3000]*[:：]?[ \u3000]*)"
    rf"([{_ALNUM}_\-]{{5,30}})"
)


def _messenger(m: re.Match[str]) -> str:
    ident = m.group(2)
    return m.group(1) + ident[0] + "*" * (len(ident) - 1)


# --- numbers ---------------------------------------------------------------------------------------

_ID_CARD: Final = re.compile(
    rf"(?<![{_ALNUM}])"
    rf"(?:{_D}{{6}}{_SEP}?{_D}{{4}}{_SEP}?{_D}{{4}}{_SEP}?{_D}{{3}}[0-9０-９XxＸｘ]|{_D}{{15}})"
    rf"(?![{_ALNUM}])"
)
_BANK_CARD: Final = re.compile(
    rf"{_NO_DIGIT_BEFORE}{_D}{{4}}(?:{_SEP}?{_D}{{4}}){{3}}(?:{_SEP}?{_D}{{1,3}})?{_NO_DIGIT_AFTER}"
)
_MOBILE: Final = re.compile(
    rf"{_NO_DIGIT_BEFORE}(?P<prefix>(?:[+＋]|00|００)?(?:86|８６){_SEP}?|[(（][+＋]?(?:86|８６)[)）] ?)?"
    rf"(?P<number>[1１]{_SEP}?[3-9３-９](?:{_SEP}?{_D}){{9}}){_NO_DIGIT_AFTER}"
)
_LANDLINE: Final = re.compile(
    rf"{_NO_DIGIT_BEFORE}(?P<area>[(（]?[0０]{_D}{{2,3}}[)）]?){_SEP}?"
    rf"(?P<local>[2-9２-９]{_D}{{2,3}}{_SEP}?{_D}{{4}}){_NO_DIGIT_AFTER}"
)
_CONTACT_NUMBER: Final = re.compile(
    r"((?:电话|手机|手机号|手机号码|号码|联系方式|联系电话|座机|固话|[Tt][Ee][Ll])[ \u3000]*[:：]?[ \u3000]*)"
    rf"({_D}(?:{_SEP}?{_D}){{6,}})"  # 7 digits or more: 电话12345 is the public service hotline
)


def _id_card(m: re.Match[str]) -> str:
    return _star_digits(m.group(0), head=3, tail=4)


def _bank_card(m: re.Match[str]) -> str:
    return _star_digits(m.group(0), tail=4)


def _mobile(m: re.Match[str]) -> str:
    return (m.group("prefix") or "") + _star_digits(m.group("number"), head=3, tail=4)


def _landline(m: re.Match[str]) -> str:
    return m.group(0)[: m.start("local") - m.start(0)] + _star_digits(m.group("local"), tail=2)


def _contact_number(m: re.Match[str]) -> str:
    return m.group(1) + _star_digits(m.group(2), tail=2)


# --- licence plates and addresses ------------------------------------------------------------------

_PLATE: Final = re.compile(
    r"([京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼])([A-Za-zＡ-Ｚａ-ｚ])([·•・.．\- ]?)"
    r"([A-Za-z0-9Ａ-Ｚａ-ｚ０-９]{5,6})(?![A-Za-z0-9Ａ-Ｚａ-ｚ０-９])"
)


def _plate(m: re.Match[str]) -> str:
    tail = m.group(4)
    if sum(ch in _DIGITS for ch in tail) < 3:  # 新iPhone, 京东APP… are not plates
        return m.group(0)
    return m.group(1) + m.group(2) + m.group(3) + "*" * (len(tail) - 2) + tail[-2:]


_BUILDING: Final = f"{_D}+(?:号楼|号院|栋|幢|单元)"
_ROOM: Final = f"{_D}{{3,5}}室"
_QUANTITY_AFTER: Final = "[度元米平斤吨人户个天年月日时分秒%％岁]"
_ADDRESS: Final = re.compile(
    rf"(?:{_BUILDING}|{_ROOM})(?:{_SEP}?(?:{_D}+(?:号楼|号院|栋|幢|单元|层|楼|室|号)|{_D}{{3,4}}(?![0-9０-９]|{_QUANTITY_AFTER})))*"
    rf"|(?<![0-9０-９\-－]){_D}{{1,3}}[-－]{_D}{{1,2}}[-－]{_D}{{3,4}}(?![0-9０-９\-－])"
)


def _address(m: re.Match[str]) -> str:
    return _star_digits(m.group(0))


# --- any other long number -------------------------------------------------------------------------

_LONG_NUMBER: Final = re.compile(rf"(?<![0-9０-９.．￥¥]){_D}{{7,}}{_NO_DIGIT_AFTER}")
_AMOUNT_AFTER: Final = re.compile(
    r"[ \u3000]?(?:元|万|亿|千|百|角|平方|平米|㎡|米|公里|千米|吨|斤|公斤|千克|克|度|千瓦"
    r"|人|户|个|次|件|台|辆|套|亩|份|张|株|头|只|余|多)"
)
_FULLWIDTH_DIGITS: Final = str.maketrans("０１２３４５６７８９", "0123456789")


def _is_compact_date(digits: str) -> bool:
    if len(digits) != 8:
        return False
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:])
    return 1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31


def _long_number(m: re.Match[str]) -> str:
    if _AMOUNT_AFTER.match(m.string, m.end()) or _is_compact_date(m.group(0).translate(_FULLWIDTH_DIGITS)):
        return m.group(0)
    return _star_digits(m.group(0), tail=2)


# --- names -----------------------------------------------------------------------------------------

_COMPOUND_SURNAMES: Final = (
    *("欧阳", "司马", "诸葛", "上官", "东方", "慕容", "令狐", "皇甫", "尉迟", "公孙"),
    *("长孙", "宇文", "夏侯", "端木", "司徒", "司空", "独孤", "南宫", "呼延", "万俟"),
)
_SURNAMES: Final = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
    "余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
    "庞樊兰殷施陶洪翟安颜倪严牛温芦季俞章鲁葛伍韦申尤毕聂丛焦向柳邢路岳齐梅莫庄辛管祝左涂谷祁时舒耿牟卜"
    "詹关苗凌费纪靳盛童欧甄项曲成游阳裴席卫查屈鲍覃霍翁隋甘景薄单包司柏宁柯阮桂闵解强柴华车冉房边"
    "滕鞠乌宝巴敖佟"
)
_SURNAME: Final = "(?:" + "|".join(_COMPOUND_SURNAMES) + f"|[{_SURNAMES}])"
# A name stops before these characters: 我叫李明今年65岁 is 李明, not 李明今.
_AFTER_NAME: Final = frozenset("今家是在住的从现于和与及要想因已有向对给来去到年，。、")
_STRONG_CUE: Final = re.compile(
    # 我叫张三 / 姓名：张三 / 留言人姓名：张三 / 名字是张三 / 联系人：张三 (the roles need a colon or 是/为:
    # "当事人所述情况属实" names nobody).
    r"((?:(?:留言人|反映人|户主|申请人|联系人|本人)?(?:姓名|名字)(?:是|为|叫)?|我叫|我名叫|名叫|本人叫"
    r"|(?:联系人|留言人|反映人|户主|申请人|当事人)(?:是|为|[:：]))[:：]?[ \u3000]*)"
    rf"(?!姓名|名字|电话|手机|联系|身份|我|本人|他|她)([{_CJK}·]{{2,6}})"
)
_WEAK_CUE: Final = re.compile(
    r"((?:我是|本人|我(?:爸爸?|妈妈?|父亲|母亲|爱人|丈夫|妻子|老公|老婆|儿子|女儿|老伴|爷爷|奶奶)(?:叫|是)?)"
    r"[ \u3000]*)"
    rf"({_SURNAME})([{_CJK}]{{1,2}})(?=[，,。.！!？?；;：:、\s（()）]|的|$)"
)
_HONORIFIC: Final = re.compile(
    # 和/向/于/同 are surnames but mostly words here: 和张三先生 is 张三.
    rf"(?![和向于同])({_SURNAME})([{_CJK}]{{1,2}})(?=先生|女士|同志|老师|师傅|大爷|大妈|阿姨)"
)
_LEADING_SURNAME: Final = re.compile(_SURNAME)


def _strong_cue(m: re.Match[str]) -> str:
    candidate = m.group(2)
    surname = _LEADING_SURNAME.match(candidate)
    head = surname.end() if surname else 1
    given = ""
    for ch in candidate[head:]:
        if ch in _AFTER_NAME or len(given) == 2:
            break
        given += ch
    if not given:
        return m.group(0)
    return m.group(1) + candidate[:head] + "**" + candidate[head + len(given) :]


def _weak_cue(m: re.Match[str]) -> str:
    return m.group(1) + m.group(2) + "**"


# Words that begin with a surname and stand before 老师/师傅 without being anybody's name.
_NOT_NAMES: Final = frozenset(
    {"高中", "高一", "高二", "高三", "高校", "任课", "司机", "单位", "包村", "包片", "车间"}
)


def _honorific(m: re.Match[str]) -> str:
    if m.group(1) + m.group(2) in _NOT_NAMES:
        return m.group(0)
    return m.group(1) + "**"


# --- the whole --------------------------------------------------------------------------------------

_RULES: Final = (
    (_EMAIL, _email),
    (_MESSENGER, _messenger),
    (_ID_CARD, _id_card),
    (_BANK_CARD, _bank_card),
    (_MOBILE, _mobile),
    (_LANDLINE, _landline),
    (_CONTACT_NUMBER, _contact_number),
    (_PLATE, _plate),
    (_ADDRESS, _address),
    (_LONG_NUMBER, _long_number),
    (_STRONG_CUE, _strong_cue),
    (_WEAK_CUE, _weak_cue),
    (_HONORIFIC, _honorific),
)
# Private-use characters stand in for the kept strings while the rules run.
_PLACEHOLDER: Final = re.compile("\ue000(.)\ue001")
_PRIVATE_USE: Final = re.compile("[\ue000-\ue1ff]")


def mask(text: str, *, keep: Iterable[str] = ()) -> str:
    """``text`` with personal data masked (see the module's table); ``keep`` is published as is."""
    if not text:
        return ""
    text = _PRIVATE_USE.sub("", text)
    kept = sorted({k for k in keep if k and len(k) >= 3 and k in text}, key=len, reverse=True)[:200]
    for i, value in enumerate(kept):
        text = text.replace(value, f"\ue000{chr(0xE100 + i)}\ue001")
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)
    if kept:
        text = _PLACEHOLDER.sub(lambda m: kept[ord(m.group(1)) - 0xE100], text)
    return text
