"""Spreadsheets leave the portal as data, never as formulas.

Staff open the portal's Excel exports (台账, 问题清单, 考核扣分明细 …), and those carry citizens'
text: a message titled ``=HYPERLINK("http://…","点击查看")`` or ``=cmd|' /C calc'!A0`` must arrive as
that text, not as a live formula (formula injection, OWASP "CSV injection"). openpyxl stores any
string starting with "=" as a formula, so every row of user-supplied text goes through
``append_row`` (ordinary worksheets) or ``text_cell`` (streaming, write-only worksheets), which
keep such a string a string. Control characters that Excel refuses (and openpyxl raises on) are
dropped rather than failing the whole export.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet


def clean(value: Any) -> Any:
    """A string without the control characters an .xlsx cannot hold; other values unchanged."""
    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


def append_row(sheet: Worksheet, values: Iterable[Any]) -> None:
    """Append a row whose strings are all text cells, even those starting with "="."""
    sheet.append([clean(v) for v in values])
    for cell in sheet[sheet.max_row]:
        if cell.data_type == "f":
            cell.data_type = "s"


def text_cell(ws: WriteOnlyWorksheet, value: str | None) -> Any:
    """A streaming worksheet's text value: the string itself, or a cell forced to text if it
    would otherwise be read as a formula."""
    value = clean(value or "")
    if not value.startswith("="):
        return value
    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    return cell
