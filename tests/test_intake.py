"""Intake (第三条, 第九条): batch import from Excel/CSV and the message board feed's API."""

from __future__ import annotations

import io
import re
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from app.cases.imports import COLUMNS
from app.cases.models import Case
from app.cases.tokens import ApiToken, create_token, revoke_token
from app.db import system_session
from tests.helpers import csrf, sign_in

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADERS = [header for _, header in COLUMNS]


def _row(source_id: str, **overrides: str) -> list[str]:
    values = {
        "来源板块": "市长板块",
        "留言编号": source_id,
        "留言时间": "2026-11-20 09:30",
        "类别": "咨询",
        "领域": "城乡建设",
        "地区": "科尔沁区",
        "标题": f"留言 {source_id}",
        "留言内容": "小区供暖温度不达标，请帮忙协调。",
        "网民姓名": "王先生",
        "联系电话": "13847510000",
        "电子邮箱": "",
        **overrides,
    }
    return [values[h] for h in HEADERS]


def _xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _csv(rows: list[list[str]]) -> str:
    return "\r\n".join(",".join(r) for r in [HEADERS, *rows]) + "\r\n"


def _upload(client, content: bytes, filename: str = "留言.xlsx", valid_only: bool = False):  # type: ignore[no-untyped-def]
    return client.post(
        "/cases/import",
        files={"file": (filename, content, XLSX if filename.endswith(".xlsx") else "text/csv")},
        data={"valid_only": "1"} if valid_only else {},
        headers={"x-csrftoken": csrf(client)},
        follow_redirects=False,
    )


def _count(prefix: str) -> int:
    with system_session() as db:
        return int(db.scalar(select(func.count(Case.id)).where(Case.source_id.like(f"{prefix}%"))) or 0)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture()
def clerk(client):  # type: ignore[no-untyped-def]
    assert sign_in(client, "zx.clerk").status_code == 303
    return client


# --- batch import ----------------------------------------------------------------------------------


def test_the_template_opens_in_excel_with_the_chinese_headers(clerk) -> None:  # type: ignore[no-untyped-def]
    response = clerk.get("/cases/import/template.xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(XLSX)
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert [c.value for c in book.worksheets[0][1]] == HEADERS == [
        "来源板块", "留言编号", "留言时间", "类别", "领域", "地区",
        "标题", "留言内容", "网民姓名", "联系电话", "电子邮箱",
    ]  # fmt: skip
    csv = clerk.get("/cases/import/template.csv")
    assert csv.status_code == 200
    assert csv.content.startswith("\ufeff".encode())
    assert csv.content.decode("utf-8-sig").strip() == ",".join(HEADERS)


def test_the_import_page_offers_the_upload_form_and_the_link_sits_beside_register(clerk) -> None:  # type: ignore[no-untyped-def]
    page = clerk.get("/cases/import")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text
    assert 'name="_csrf_token"' in page.text
    assert "仅导入有效行" in page.text
    assert 'href="/cases/import"' in clerk.get("/cases").text


def test_a_good_workbook_registers_every_row(clerk) -> None:  # type: ignore[no-untyped-def]
    rows = [_row("IMP-1"), _row("IMP-2", 来源板块="主席板块", 类别="投诉"), _row("IMP-3")]
    response = _upload(clerk, _xlsx(rows))
    assert response.status_code == 303, _text(response.text)
    assert _count("IMP-") == 3
    with system_session() as db:
        second = db.scalar(select(Case).where(Case.source_id == "IMP-2"))
    assert second is not None
    assert (second.board, second.category, second.state) == ("chairman", "complain", "received")
    assert second.registered_by_id is not None
    assert "已导入 3 条留言" in clerk.get(response.headers["location"]).text


def test_excel_cells_typed_as_dates_and_numbers_are_read_as_written(clerk) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime

    row: list[Any] = _row("x")
    row[HEADERS.index("留言编号")] = 2026112001
    row[HEADERS.index("留言时间")] = datetime(2026, 11, 20, 9, 30)
    row[HEADERS.index("联系电话")] = 13847510000
    assert _upload(clerk, _xlsx([row])).status_code == 303
    with system_session() as db:
        case = db.scalar(select(Case).where(Case.source_id == "2026112001"))
    assert case is not None and case.citizen_phone == "13847510000"


def test_one_bad_row_and_nothing_is_registered_with_a_report_row_by_row(clerk) -> None:  # type: ignore[no-untyped-def]
    rows = [
        _row("BAD-1"),
        _row("BAD-2", 留言时间="20 November"),  # spreadsheet row 3
        _row("BAD-3", 类别="牢骚"),  # row 4
        _row("BAD-4"),
    ]
    response = _upload(clerk, _xlsx(rows))
    assert response.status_code == 422
    assert _count("BAD-") == 0
    text = _text(response.text)
    assert "本次未导入任何留言" in text
    assert re.search(r"第 3 行 留言时间 留言时间格式应为", text), text
    assert re.search(r"第 4 行 类别 请选择留言类别。（填写的是「牢骚」）", text), text
    assert "第 2 行" not in text and "第 5 行" not in text


def test_valid_only_registers_the_good_rows_and_lists_the_skipped_ones(clerk) -> None:  # type: ignore[no-untyped-def]
    rows = [_row("PART-1"), _row("PART-2", 留言时间="明天"), _row("PART-3", 类别="牢骚"), _row("PART-4")]
    response = _upload(clerk, _xlsx(rows), valid_only=True)
    assert response.status_code == 200
    assert _count("PART-") == 2
    text = _text(response.text)
    assert "已导入 2 条留言；以下 2 行有问题，未导入" in text
    assert "第 3 行 留言时间" in text and "第 4 行 类别" in text


def test_a_message_already_registered_or_twice_in_the_file_is_reported(clerk) -> None:  # type: ignore[no-untyped-def]
    rows = [_row("TL-2026-110301"), _row("DUP-1"), _row("DUP-1"), _row("DUP-2")]  # the first is demo data
    response = _upload(clerk, _xlsx(rows))
    assert response.status_code == 422
    text = _text(response.text)
    assert "第 2 行 留言编号 留言编号 TL-2026-110301 已登记，不能重复登记。" in text
    assert "第 4 行 留言编号 与第 3 行的留言编号重复" in text
    assert _count("DUP-") == 0


def test_a_program_renamed_to_xlsx_is_refused(clerk) -> None:  # type: ignore[no-untyped-def]
    program = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(range(256)) * 40
    response = _upload(clerk, program, "报表.xlsx")
    assert response.status_code == 422
    assert "文件类型不支持" in response.text
    not_a_workbook = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(not_a_workbook, "w") as z:
        z.writestr("word/document.xml", "<w/>")
    response = _upload(clerk, not_a_workbook.getvalue(), "报表.xlsx")
    assert response.status_code == 422
    assert "不是 Excel 工作簿" in response.text


def test_an_empty_submission_and_a_file_over_the_limits_are_refused(clerk) -> None:  # type: ignore[no-untyped-def]
    empty = clerk.post("/cases/import", data={}, headers={"x-csrftoken": csrf(clerk)})
    assert empty.status_code == 422
    assert "请选择要导入的" in empty.text
    many = _csv([_row(f"MANY-{i}") for i in range(5001)]).encode()
    response = _upload(clerk, many, "many.csv")
    assert response.status_code == 422
    assert "超过 5000 行" in response.text
    big = _csv([_row("BIG-1", 留言内容="长" * (6 * 1024 * 1024 // 3))]).encode()
    assert len(big) > 5 * 1024 * 1024
    assert _upload(clerk, big, "big.csv").status_code in {413, 422}
    assert _count("MANY-") + _count("BIG-") == 0


def test_csv_in_utf8_with_bom_and_in_gb18030_both_import(clerk) -> None:  # type: ignore[no-untyped-def]
    with_bom = (
        "\ufeff" + _csv([_row("CSV-U1"), _row("CSV-U2", 来源板块="主席板块（自治区政府政研室交办）")])
    ).encode()
    assert _upload(clerk, with_bom, "留言.csv").status_code == 303
    gb = _csv([_row("CSV-G1", 留言内容="供暖温度不达标，𠮷祥小区")]).encode("gb18030")
    assert _upload(clerk, gb, "留言.csv").status_code == 303
    assert _count("CSV-") == 3
    with system_session() as db:
        case = db.scalar(select(Case).where(Case.source_id == "CSV-G1"))
    assert case is not None and "𠮷祥小区" in case.body


def test_a_unit_handler_may_not_import(client) -> None:  # type: ignore[no-untyped-def]
    assert sign_in(client, "horqin.handler").status_code == 303
    assert client.get("/cases/import", follow_redirects=False).status_code == 403
    assert client.get("/cases/import/template.xlsx", follow_redirects=False).status_code == 403
    assert _upload(client, _xlsx([_row("UNIT-1")])).status_code == 403
    assert _count("UNIT-") == 0


# --- the message board feed ------------------------------------------------------------------------


def _token(name: str = "留言板推送") -> str:
    with system_session() as db:
        _, plain = create_token(db, name)
    return plain


def _message(source_id: str = "API-1", **overrides: Any) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "board": "mayor",
        "title": "小区门口路灯不亮",
        "body": "科尔沁区建国路小区门口路灯坏了一个月。",
        "posted_at": "2026-11-21 20:15",
        "category": "help",
        "region": "科尔沁区",
        "citizen_name": "李女士",
        **overrides,
    }


def _send(client, body: Any, token: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/v1/messages", json=body, headers=headers)


def test_the_feed_needs_a_token(client) -> None:  # type: ignore[no-untyped-def]
    response = _send(client, _message())
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401
    assert _send(client, _message(), "mpt_not-a-token").status_code == 401
    assert _count("API-") == 0


def test_a_revoked_token_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    token = _token("old feed")
    assert _send(client, _message("API-R1"), token).status_code == 201
    with system_session() as db:
        assert revoke_token(db, "old feed") == 1
    response = _send(client, _message("API-R2"), token)
    assert response.status_code == 401
    assert "吊销" in response.json()["detail"]
    assert _count("API-R") == 1


def test_a_message_from_the_feed_waits_in_the_centres_queue(client) -> None:  # type: ignore[no-untyped-def]
    token = _token()
    response = _send(client, _message("API-OK"), token)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["source_id"] == "API-OK" and body["state"] == "received" and isinstance(body["id"], int)
    with system_session() as db:
        case = db.get(Case, body["id"])
        used = db.scalar(select(ApiToken.last_used_at))
    assert case is not None and case.registered_by_id is None and used is not None
    assert sign_in(client, "zx.clerk").status_code == 303
    assert "小区门口路灯不亮" in client.get("/cases?status=received").text
    assert client.get(f"/cases/{body['id']}").status_code == 200


def test_the_same_message_twice_is_a_conflict(client) -> None:  # type: ignore[no-untyped-def]
    token = _token()
    assert _send(client, _message("API-D"), token).status_code == 201
    response = _send(client, _message("API-D", title="再次推送"), token)
    assert response.status_code == 409
    assert response.json() == {
        "status": 409,
        "error": "操作冲突",
        "detail": "留言编号 API-D 已登记，不能重复登记。",
        "field": "source_id",
    }


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"category": "rant"}, "category"),
        ({"posted_at": "yesterday"}, "posted_at"),
        ({"board": ""}, "board"),
        ({"title": ""}, "title"),
        ({"topic": "长" * 61}, "topic"),
        ({"source_id": 42}, "source_id"),
    ],
)
def test_invalid_input_is_422_naming_the_field(client, overrides: dict[str, Any], field: str) -> None:  # type: ignore[no-untyped-def]
    response = _send(client, {**_message("API-BAD"), **overrides}, _token())
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert _count("API-BAD") + _count("42") == 0


def test_a_missing_field_is_422_and_a_body_that_is_not_json_is_400(client) -> None:  # type: ignore[no-untyped-def]
    token = _token()
    body = _message("API-M")
    del body["title"]
    response = _send(client, body, token)
    assert response.status_code == 422
    assert response.json()["field"] == "title"
    auth = {"Authorization": f"Bearer {token}"}
    for content, content_type in [
        (b"not json", "application/json"),
        (b"[1]", "application/json"),
        (b"", "application/json"),
        (b"a=b", "application/x-www-form-urlencoded"),
    ]:
        response = client.post(
            "/api/v1/messages", content=content, headers={**auth, "Content-Type": content_type}
        )
        assert response.status_code == 400, (content, response.text)
        assert response.json()["status"] == 400


def test_the_schema_describes_the_feed_and_nothing_else(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/api/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"] == {"title": "民盼通办 留言接收接口", "version": "1.0", **schema["info"]}
    assert set(schema["paths"]) == {"/api/v1/messages"}
    operation = schema["paths"]["/api/v1/messages"]["post"]
    assert {"201", "401", "409", "422"} <= set(operation["responses"])
    assert schema["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"


def test_the_cli_prints_a_token_once_and_stores_its_hash(client) -> None:  # type: ignore[no-untyped-def]
    from app.cli import main

    result = CliRunner().invoke(main, ["api-token", "create", "--name", "cli feed"])
    assert result.exit_code == 0, result.output
    plain = result.stdout.strip().splitlines()[-1]
    assert plain.startswith("mpt_")
    with system_session() as db:
        stored = db.scalar(select(ApiToken.token_hash).where(ApiToken.name == "cli feed"))
    assert stored is not None and plain not in stored and len(stored) == 64
    assert _send(client, _message("API-CLI"), plain).status_code == 201
    assert CliRunner().invoke(main, ["api-token", "revoke", "--name", "cli feed"]).exit_code == 0
    assert _send(client, _message("API-CLI2"), plain).status_code == 401


def test_the_feed_delivers_attachments_with_the_message_or_nothing(client) -> None:  # type: ignore[no-untyped-def]
    import base64

    from app.cases.models import Attachment

    token = _token()
    pdf = base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()
    good = _send(
        client,
        _message("API-ATT-1", attachments=[{"filename": "照片说明.pdf", "content_base64": pdf}]),
        token,
    )
    assert good.status_code == 201
    with system_session() as db:
        names = list(
            db.scalars(
                select(Attachment.filename)
                .join(Case, Case.id == Attachment.case_id)
                .where(Case.source_id == "API-ATT-1")
            )
        )
    assert names == ["照片说明.pdf"]
    script = base64.b64encode(b"<html><script>alert(1)</script></html>").decode()
    bad = _send(
        client,
        _message(
            "API-ATT-2",
            attachments=[
                {"filename": "a.pdf", "content_base64": pdf},
                {"filename": "b.pdf", "content_base64": script},
            ],
        ),
        token,
    )
    assert bad.status_code == 422 and bad.json()["field"] == "attachments" and "b.pdf" in bad.json()["detail"]
    broken = _send(
        client, _message("API-ATT-3", attachments=[{"filename": "c.pdf", "content_base64": "!!"}]), token
    )
    assert broken.status_code == 422
    assert _count("API-ATT-2") == 0 and _count("API-ATT-3") == 0
