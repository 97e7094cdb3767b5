"""Personal data never reaches the public (第七条, 第十八条): app.public.masking.mask.

A corpus of real-looking personal data in the shapes citizens type it (full-width digits, spaces
and dashes inside numbers, +86, numbers glued to Chinese text, 15- and 18-digit ID numbers, bank
cards with spaces), and what must survive: dates, years, document numbers, amounts, quantities.
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.public.masking import mask

# (text as typed, the personal data in it that must not survive)
PERSONAL = [
    ("我的电话13847511000，请尽快联系。", "13847511000"),
    ("手机：138 4751 1000", "138 4751 1000"),
    ("手机：138-4751-1000", "138-4751-1000"),
    ("联系方式+86 138 4751 1000", "4751"),
    ("联系方式+8613847511000", "13847511000"),
    ("联系方式0086-13847511000", "13847511000"),
    ("联系方式(+86)13847511000", "13847511000"),
    ("电话１３８４７５１１０００谢谢", "１３８４７５１１０００"),
    ("电话＋８６ １３８ ４７５１ １０００", "４７５１"),
    ("打13847511000或15904751234都行", "15904751234"),
    ("座机0475-8212345", "8212345"),
    ("座机（0475）82123456", "82123456"),
    ("座机0475 8212345", "8212345"),
    ("座机04758212345", "04758212345"),
    ("电话：821-2345", "821-2345"),
    ("身份证号110105199001011234", "110105199001011234"),
    ("身份证号11010519900101123X", "11010519900101123X"),
    ("身份证号11010519900101123x。", "19900101"),
    ("身份证 110105 19900101 1234", "19900101"),
    ("身份证 110105 1990 0101 1234", "1990 0101"),
    ("老身份证110105900101123", "110105900101123"),
    ("身份证号：１１０１０５１９９００１０１１２３４", "１９９００１０１"),
    ("银行卡号6222021234567890123", "6222021234567890123"),
    ("银行卡号6222 0212 3456 7890 123", "3456 7890"),
    ("银行卡号6222-0212-3456-7890", "0212-3456"),
    ("卡号6222021234567890", "6222021234567890"),
    ("邮箱zhangsan@qq.com", "zhangsan"),
    ("邮箱 zhang.san_88@163.com，", "zhang.san_88"),
    ("邮箱ｚｈａｎｇｓａｎ＠ｑｑ．ｃｏｍ", "ｚｈａｎｇｓａｎ"),
    ("QQ：12345678", "12345678"),
    ("QQ号 98765", "98765"),
    ("微信号 zs_1990abc", "zs_1990abc"),
    ("车牌号蒙G·12345", "12345"),
    ("车牌号蒙GD12345", "D12345"),
    ("车牌号蒙g 12345", "12345"),
    ("家住明仁小区3号楼2单元502室", "502"),
    ("家住明仁小区3号楼502", "3号楼502"),
    ("家住明仁小区12栋1单元1202", "1202"),
    ("家住明仁小区3-2-502", "3-2-502"),
    ("供暖户号12345678", "12345678"),
    ("我叫张三，家住科尔沁区", "张三"),
    ("我叫张小明今年65岁", "小明"),
    ("姓名：李建国", "建国"),
    ("留言人姓名：欧阳娜娜", "娜娜"),
    ("联系人：王海燕", "海燕"),
    ("我是李明。", "李明"),
    ("我父亲王建国，", "建国"),
    ("尊敬的赵志强先生：", "志强"),
    ("请王小红女士", "小红"),
    ("我和张三先生", "张三"),
    ("我叫巴特尔，是蒙古族", "特尔"),
]


@pytest.mark.parametrize(("text", "secret"), PERSONAL)
def test_personal_data_does_not_survive(text: str, secret: str) -> None:
    out = mask(text)
    assert secret not in out, out
    assert out == mask(out), "masking twice changes nothing"


# Runs of 7+ digits that may stay: only these (a date written compactly, an amount, decimals).
ALLOWED_LONG_RUNS = {"20261127", "3500000", "1415926"}

KEPT = [
    "2026年11月27日", "2026-11-27", "20261127", "通留〔2026〕12号", "1200元", "3500000元",
    "15度", "300平方米", "3.1415926", "政务服务便民热线12345", "张女士", "王先生", "高中老师",
    "和平路58号", "第十二条", "热线电话12345", "5个工作日", "我是科尔沁区居民", "本人常年在外务工",
]  # fmt: skip


@pytest.mark.parametrize("text", KEPT)
def test_what_is_not_personal_is_kept(text: str) -> None:
    assert mask(text) == text


def test_masked_forms_are_the_documented_ones() -> None:
    assert mask("13847511000") == "138****1000"
    assert mask("110105199001011234") == "110***********1234"
    assert mask("6222021234567890123") == "***************0123"
    assert mask("zhangsan@qq.com") == "z***@qq.com"
    assert mask("蒙G·12345") == "蒙G·***45"
    assert mask("3号楼2单元502室") == "*号楼*单元***室"
    assert mask("3号楼502") == "*号楼***"
    assert mask("0475-8212345") == "0475-*****45"
    assert mask("我叫张三") == "我叫张**"
    assert mask("张三先生") == "张**先生"


def _long_digit_runs(text: str) -> set[str]:
    return set(re.findall(r"\d{7,}", unicodedata.normalize("NFKC", text)))


def test_a_whole_message_keeps_no_long_number_but_dates_and_amounts() -> None:
    message = "\n".join(text for text, _ in PERSONAL) + "\n" + "\n".join(KEPT)
    out = mask(message)
    assert _long_digit_runs(out) <= ALLOWED_LONG_RUNS, _long_digit_runs(out) - ALLOWED_LONG_RUNS
    # Each line is masked as it is on its own (the rules do not reach across lines).
    assert out.split("\n")[: len(PERSONAL)] == [mask(text) for text, _ in PERSONAL]
    assert mask(out) == out


def test_kept_strings_are_published_as_they_are() -> None:
    """第十二条: the handler's office phone is published with the reply; a citizen's is not."""
    reply = "经办人李娜，办公电话0475-8300101。留言人手机13847511000。"
    out = mask(reply, keep=["李娜", "0475-8300101"])
    assert "0475-8300101" in out and "李娜" in out
    assert "13847511000" not in out
    assert mask(reply).count("8300101") == 0


def test_private_use_characters_cannot_smuggle_a_kept_string() -> None:
    assert mask("\ue000\ue100\ue001 13847511000", keep=["0475-8300101"]) == " 138****1000"


# --- properties ----------------------------------------------------------------------------------

_HAN = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
_ANY = st.text(
    alphabet=st.one_of(_HAN, st.characters(codec="utf-8"), st.sampled_from("0123456789０１２３ -+@.·号楼室")),
    max_size=200,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ANY)
def test_masking_never_fails_is_idempotent_and_does_not_grow_much(text: str) -> None:
    out = mask(text)
    assert isinstance(out, str)
    assert len(out) <= 2 * len(text) + 8
    assert mask(out) == out


_SEPARATOR = st.sampled_from(["", " ", "-", "\u3000", "－"])


@st.composite
def _typed_mobile(draw: st.DrawFn) -> tuple[str, str]:
    digits = (
        "1"
        + draw(st.sampled_from("3456789"))
        + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=9, max_size=9)))
    )
    sep = draw(_SEPARATOR)
    typed = digits[:3] + sep + digits[3:7] + sep + digits[7:]
    if draw(st.booleans()):
        typed = typed.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "0086", "86", "(+86)"]))
    return prefix + typed, digits


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_HAN, max_size=20), _typed_mobile(), st.text(alphabet=_HAN, max_size=20))
def test_no_mobile_number_survives_however_it_is_typed(
    before: str, mobile: tuple[str, str], after: str
) -> None:
    typed, digits = mobile
    out = mask(before + typed + after)
    flattened = re.sub(r"[\s\-－]", "", unicodedata.normalize("NFKC", out))
    assert digits not in flattened, out
    assert not re.search(r"1[3-9]\d{9}", flattened), out
