"""Batch registration (第三条, 第九条): messages from an Excel or CSV file become cases.

Three steps, each a plain function: read the file into rows (``read_upload``), check every row
with the form's own ``validate_message`` and against the rows above it (``check_rows``), then
register the valid ones through ``register_case`` (``register_rows``) in the caller's savepoint.
Row numbers are the spreadsheet's own: the header is row 1, the first message row 2.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.cases.models import Case
from app.cases.services import MessageInput, register_case, validate_message
from app.cases.vocab import BOARDS, CATEGORIES
from app.errors import Conflict, InvalidInput

# The template's columns, in order: (MessageInput field, header).
COLUMNS: Final = (
    ("board", "来源板块"),
    ("source_id", "留言编号"),
    ("posted_at", "留言时间"),
    ("category", "类别"),
    ("topic", "领域"),
    ("region", "地区"),
    ("title", "标题"),
    ("body", "留言内容"),
    ("citizen_name", "网民姓名"),
    ("citizen_phone", "联系电话"),
    ("citizen_email", "电子邮箱"),
)
HEADERS: Final = {name: header for name, header in COLUMNS}
REQUIRED: Final = ("board", "source_id", "posted_at", "category", "title", "body")
MAX_BYTES: Final = 5 * 1024 * 1024
MAX_ROWS: Final = 5000
# Not checked by validate_message (the form has the same gap); the columns are this long.

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, or an encrypted .xlsx
_MAX_UNZIPPED = 100 * 1024 * 1024  # a zip bomb is refused before openpyxl opens it
_MAX_BLANK_RUN = 1000  # a sheet "used" to row 1 048 576 by formatting alone ends here

# The board's labels as people write them (第三条), besides the vocabulary's own.
_BOARD_ALIASES: Final = {
    **{label: key for key, label in BOARDS.items()},
    "市长板块": "mayor",
    "市长": "mayor",
    "主席板块": "chairman",
    "主席": "chairman",
}
_CATEGORY_ALIASES: Final = {label: key for key, label in CATEGORIES.items()}


def _refuse(message: str) -> InvalidInput:
    return InvalidInput(message, field="file")


@dataclass(frozen=True)
class SheetRow:
    line: int  # as the spreadsheet shows it
    values: dict[str, str]  # MessageInput field → the cell's text


@dataclass(frozen=True)
class Problem:
    line: int
    column: str  # the Chinese header
    message: str


@dataclass
class Report:
    total: int = 0
    valid: list[tuple[int, MessageInput]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# --- reading ---------------------------------------------------------------------------------------


def read_upload(data: bytes) -> list[SheetRow]:
    """The message rows of an .xlsx or CSV file, told apart by content, never by the file's name."""
    if not data:
        raise _refuse("上传的文件是空的。")
    if len(data) > MAX_BYTES:
        raise _refuse("文件超过 5 MB，请拆分后分批导入。")
    if data.startswith(_ZIP_MAGIC):
        return _rows(_xlsx_table(data))
    if data.startswith(_OLE_MAGIC):
        raise _refuse("这是旧版 Excel（.xls）或加密的文件：请在 Excel 中另存为 .xlsx（不设密码）后再导入。")
    return _rows(_csv_table(_decode(data)))


def _xlsx_table(data: bytes) -> Iterator[Sequence[object]]:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            unzipped = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise _refuse("文件已损坏，无法读取。") from exc
    if not {"[Content_Types].xml", "xl/workbook.xml"} <= names:
        raise _refuse("不是 Excel 工作簿（.xlsx）：请上传导入模板格式的 .xlsx 或 CSV 文件。")
    if unzipped > _MAX_UNZIPPED:
        raise _refuse("文件内容过大，请拆分后分批导入。")
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a malformed workbook
        raise _refuse("无法读取该 Excel 文件，请用导入模板重新保存后再试。") from exc
    try:
        sheet = book.worksheets[0]
        yield from sheet.iter_rows(values_only=True, max_col=64)
    except InvalidInput:
        raise
    except Exception as exc:  # a sheet damaged past the part openpyxl reads when opening
        raise _refuse("无法读取该 Excel 文件，请用导入模板重新保存后再试。") from exc
    finally:
        book.close()


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (Excel's "CSV" on a Chinese Windows)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text or sum(c < " " and c not in "\t\r\n" for c in text[:20000]) > 10:
            break  # decodes, but is binary (an .exe, an image, UTF-16 …)
        return text
    raise _refuse("文件类型不支持：请上传 Excel（.xlsx）文件，或 UTF-8 / GB18030 编码的 CSV 文件。")


def _csv_table(text: str) -> Iterator[Sequence[object]]:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    try:
        yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    except csv.Error as exc:
        raise _refuse(f"CSV 格式有误：{exc}") from exc


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S" if value.second else "%Y-%m-%d %H:%M")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number or message id Excel stored as a number
    return str(value).strip()


def _header_field(text: str) -> str | None:
    text = text.strip().strip("*＊").strip()
    for name, header in COLUMNS:
        if text in (header, name):
            return name
    return None


def _rows(table: Iterable[Sequence[object]]) -> list[SheetRow]:
    rows: list[SheetRow] = []
    lines = iter(table)
    header = [_cell_text(v) for v in next(lines, ())]
    fields = [_header_field(h) for h in header]
    missing = [HEADERS[name] for name in REQUIRED if name not in fields]
    if missing:
        raise _refuse(f"第 1 行应为表头，缺少列：{'、'.join(missing)}。请使用导入模板。")
    seen = [f for f in fields if f]
    if len(seen) != len(set(seen)):
        raise _refuse("表头有重复的列，请使用导入模板。")
    blank_run = 0
    for line, cells in enumerate(lines, start=2):
        values = {f: _cell_text(v) for f, v in zip(fields, cells, strict=False) if f}
        if not any(values.values()):
            blank_run += 1
            if blank_run > _MAX_BLANK_RUN:
                break
            continue
        blank_run = 0
        if len(rows) == MAX_ROWS:
            raise _refuse(f"文件超过 {MAX_ROWS} 行留言，请拆分后分批导入。")
        rows.append(SheetRow(line, values))
    if not rows:
        raise _refuse("文件中没有留言（第 2 行起填写，每行一条）。")
    return rows


# --- checking --------------------------------------------------------------------------------------


def to_message(row: SheetRow) -> MessageInput:
    """Board and category may be written as their Chinese labels."""
    values = dict(row.values)
    board, category = values.get("board", ""), values.get("category", "")
    values["board"] = _BOARD_ALIASES.get(board, board)
    values["category"] = _CATEGORY_ALIASES.get(category, category)
    return MessageInput.from_form(values)


def check_rows(db: Session, rows: Sequence[SheetRow]) -> Report:
    """Every row through the form's validation, and each message id once in the file (第五条)."""
    report = Report(total=len(rows))
    first_line: dict[str, int] = {}
    for row in rows:
        msg = to_message(row)
        try:
            validate_message(db, msg)
            if msg.source_id in first_line:
                raise InvalidInput(
                    f"与第 {first_line[msg.source_id]} 行的留言编号重复，同一条留言只能登记一次。",
                    field="source_id",
                )
        except InvalidInput as exc:
            report.problems.append(_problem(row, exc))
        else:
            report.valid.append((row.line, msg))
        if msg.source_id:
            first_line.setdefault(msg.source_id, row.line)
    return report


def _problem(row: SheetRow, exc: InvalidInput) -> Problem:
    name = exc.field or ""
    column = HEADERS.get(name, "—")
    written = row.values.get(name, "")
    message = exc.message
    if written and name in ("board", "category", "posted_at"):
        message += f"（填写的是「{written[:40]}」）"
    return Problem(row.line, column, message)


def register_rows(db: Session, actor: CurrentUser, messages: Iterable[MessageInput]) -> list[Case]:
    """登记 each message exactly as the form does; the caller's savepoint makes it all or nothing."""
    try:
        return [register_case(db, actor, msg) for msg in messages]
    except IntegrityError as exc:  # someone registered one of them since check_rows
        raise Conflict("文件中有留言刚刚被他人登记，本次未导入任何留言，请重新导入。") from exc


# --- the template ----------------------------------------------------------------------------------

_GUIDE: Final = (
    ("来源板块", "必填", "市长板块 或 主席板块（第三条）"),
    ("留言编号", "必填", "人民网地方领导留言板上的编号，不超过 64 位；不能与已登记的留言重复"),
    ("留言时间", "必填", "如 2026-11-20 09:30（通辽时间），不能晚于当前时间"),
    ("类别", "必填", "、".join(CATEGORIES.values())),
    ("领域", "选填", "如 城乡建设、教育、医疗，不超过 60 字"),
    ("地区", "选填", "如 科尔沁区，不超过 60 字"),
    ("标题", "必填", "不超过 200 字"),
    ("留言内容", "必填", "留言全文"),
    ("网民姓名", "选填", "个人信息，仅工作人员可见，不公开"),
    ("联系电话", "选填", "个人信息，仅工作人员可见，不公开"),
    ("电子邮箱", "选填", "个人信息，仅工作人员可见，不公开"),
)


def template_csv() -> bytes:
    """Header only, UTF-8 with BOM so that Excel opens the Chinese correctly."""
    return ("\ufeff" + ",".join(header for _, header in COLUMNS) + "\r\n").encode()


def template_xlsx() -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "留言"
    sheet.append([header for _, header in COLUMNS])
    sheet.freeze_panes = "A2"
    widths = {"来源板块": 12, "留言编号": 16, "留言时间": 18, "标题": 36, "留言内容": 60}
    for index, (name, header) in enumerate(COLUMNS, start=1):
        cell = sheet.cell(row=1, column=index)
        cell.font = Font(bold=True, color="B3261E" if name in REQUIRED else "000000")
        cell.fill = PatternFill("solid", fgColor="F2F2F2")
        column = sheet.column_dimensions[get_column_letter(index)]
        column.width = widths.get(header, 12)
        if name in ("source_id", "citizen_phone"):
            column.number_format = "@"  # keep long numbers as typed
    for name, choices in (("board", ["市长板块", "主席板块"]), ("category", list(CATEGORIES.values()))):
        letter = get_column_letter([n for n, _ in COLUMNS].index(name) + 1)
        check = DataValidation(type="list", formula1='"' + ",".join(choices) + '"', allow_blank=True)
        check.add(f"{letter}2:{letter}{MAX_ROWS + 1}")
        sheet.add_data_validation(check)
    guide = book.create_sheet("填写说明")
    guide.append(["列", "是否必填", "填写要求"])
    for line in _GUIDE:
        guide.append(list(line))
    guide.append([])
    guide.append(["说明", "", f"第 1 行为表头，第 2 行起每行一条留言；每次最多 {MAX_ROWS} 行、5 MB。"])
    guide.column_dimensions["A"].width = 12
    guide.column_dimensions["C"].width = 70
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
