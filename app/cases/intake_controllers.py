"""批量导入 (第三条, 第九条): the centre registers many messages from one Excel or CSV file.

All or nothing by default: one bad row and nothing is registered, with a report row by row. The
clerk may choose 「仅导入有效行」 instead; then the valid rows land and the others are listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.cases import imports
from app.cases.vocab import CATEGORIES
from app.errors import InvalidInput
from app.permissions import Permission, requires
from app.web import flash
from app.web.deps import attempt
from app.web.render import page

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Shown at most; the count says how many more there are.
REPORT_LIMIT = 1000


@dataclass
class ImportForm:
    file: UploadFile | None = None
    valid_only: str = ""


def _download(content: bytes, media_type: str, extension: str) -> Response[bytes]:
    name = quote(f"留言导入模板.{extension}")
    disposition = f"attachment; filename=\"template.{extension}\"; filename*=UTF-8''{name}"
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})


class IntakeController(Controller):
    path = "/cases/import"

    def _page(self, request: Request[Any, Any, Any], status_code: int = 200, **context: Any) -> Response[Any]:
        values: dict[str, Any] = {
            "error": None,
            "report": None,
            "imported": None,
            "valid_only": False,
            "filename": "",
            "columns": imports.COLUMNS,
            "categories": CATEGORIES,
            "required": imports.REQUIRED,
            "max_rows": imports.MAX_ROWS,
            "report_limit": REPORT_LIMIT,
        }
        values.update(context)
        return page(request, "cases/import.html", status_code=status_code, **values)

    @get("", opt=requires(Permission.CASE_REGISTER), sync_to_thread=False)
    def form(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return self._page(request)

    @get("/template.xlsx", opt=requires(Permission.CASE_REGISTER), sync_to_thread=False)
    def template_xlsx(self) -> Response[bytes]:
        return _download(imports.template_xlsx(), XLSX, "xlsx")

    @get("/template.csv", opt=requires(Permission.CASE_REGISTER), sync_to_thread=False)
    def template_csv(self) -> Response[bytes]:
        return _download(imports.template_csv(), "text/csv", "csv")

    @post(
        "",
        opt=requires(Permission.CASE_REGISTER),
        sync_to_thread=True,
        request_max_body_size=imports.MAX_BYTES + 256 * 1024,  # the file plus the form around it
    )
    def upload(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Response[Any]:
        valid_only = bool(data.valid_only)
        upload = data.file if isinstance(data.file, UploadFile) else None
        shown: dict[str, Any] = {"valid_only": valid_only, "filename": upload.filename if upload else ""}
        try:
            if upload is None or not upload.filename:
                raise InvalidInput("请选择要导入的 Excel 或 CSV 文件。", field="file")
            rows = imports.read_upload(upload.file.read(imports.MAX_BYTES + 1))
        except InvalidInput as exc:
            return self._page(request, 422, error=exc, **shown)
        report = imports.check_rows(db, rows)
        if not report.valid or (report.problems and not valid_only):
            return self._page(request, 422, report=report, **shown)
        cases, error = attempt(db, lambda: imports.register_rows(db, me, [m for _, m in report.valid]))
        if error:
            return self._page(request, error.status_code, error=error, **shown)
        assert cases is not None
        if not report.problems:
            response = Response("", status_code=303, headers={"Location": "/cases?status=received"})
            return flash.add(response, f"已导入 {len(cases)} 条留言。")
        return self._page(request, report=report, imported=cases, **shown)
