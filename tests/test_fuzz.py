"""Fuzzing: the intake API from its own OpenAPI description (schemathesis), and property tests
(hypothesis) of the import parser, the form parsers and the masking of contact data.

Each test is bounded (a fixed number of examples, no per-example deadline) to stay well under a
minute: CI runs the whole suite twice within its time limit.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from app.cases.imports import COLUMNS, read_upload, to_message
from app.cases.services import MessageInput, parse_posted_at
from app.db import system_session
from app.errors import InvalidInput
from app.public.masking import mask
from app.security.contact import mask_email, mask_name, mask_phone

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
    database=None,  # the same examples every run: a CI failure reproduces locally
    derandomize=True,
)


# --- the intake API, from its OpenAPI description ----------------------------------------------


@pytest.fixture()
def feed(demo: None) -> Iterator[tuple[Any, str]]:
    from app.app import create_app
    from app.cases.tokens import create_token

    with system_session() as db:
        _, token = create_token(db, "模糊测试")
    app = create_app()
    yield schemathesis.openapi.from_asgi("/api/schema/openapi.json", app), token


def test_the_intake_api_never_answers_500_and_keeps_to_its_schema(feed) -> None:  # type: ignore[no-untyped-def]
    schema, token = feed
    operation = schema["/api/v1/messages"]["POST"]
    strategy = operation.as_strategy()
    statuses: set[int] = set()

    @FUZZ
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"},
            checks=[not_a_server_error, content_type_conformance, response_schema_conformance],
        )
        statuses.add(response.status_code)
        assert response.status_code in {201, 400, 409, 422}, response.text

    fuzz()
    assert 201 in statuses or 422 in statuses, statuses  # it reached the validation, not only the door


def test_the_intake_api_survives_malformed_bodies_and_headers(client) -> None:  # type: ignore[no-untyped-def]
    from app.cases.tokens import create_token

    with system_session() as db:
        _, token = create_token(db, "畸形请求")
    auth = {"Authorization": f"Bearer {token}"}

    @FUZZ
    @given(
        body=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)),
        content_type=st.sampled_from(["application/json", "text/plain", "application/json; charset=gbk", ""]),
    )
    def fuzz(body: bytes, content_type: str) -> None:
        response = client.post(
            "/api/v1/messages", content=body, headers={**auth, "Content-Type": content_type}
        )
        assert response.status_code < 500, (body, response.text)
        assert response.headers["content-type"].startswith("application/json")

    fuzz()


# --- the import parser ----------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes_are_read_as_rows_or_refused_in_chinese(data: bytes) -> None:
    _read(data)


def _read(data: bytes) -> None:
    try:
        rows = read_upload(data)
    except InvalidInput as exc:
        assert exc.field == "file" and re.search(r"[\u4e00-\u9fff]", exc.message)
        return
    for row in rows:
        assert row.line >= 2
        to_message(row)  # every row becomes a form's input


_CELL = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@FUZZ
@given(
    rows=st.lists(st.lists(_CELL, min_size=0, max_size=14), max_size=8),
    header=st.permutations([h for _, h in COLUMNS]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
    delimiter=st.sampled_from([",", "\t"]),
)
def test_any_csv_with_the_template_header_parses_or_is_refused(
    rows: list[list[str]], header: list[str], encoding: str, delimiter: str
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    try:
        data = buffer.getvalue().encode(encoding)
    except UnicodeEncodeError:
        return
    _read(data)


@FUZZ
@given(st.binary(min_size=0, max_size=600))
def test_a_damaged_workbook_is_refused_not_a_crash(tail: bytes) -> None:
    from tests.test_intake import _row, _xlsx

    good = _xlsx([_row("FZ-1")])
    _read(good[: len(good) // 2] + tail)  # cut and patched
    _read(b"PK\x03\x04" + tail)


# --- the form parsers -----------------------------------------------------------------------------


@FUZZ
@given(st.text(max_size=40))
def test_a_posted_time_is_parsed_or_refused_naming_its_field(value: str) -> None:
    try:
        parsed = parse_posted_at(value)
    except InvalidInput as exc:
        assert exc.field == "posted_at"
    else:
        assert parsed.tzinfo is not None


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from([*MessageInput.__dataclass_fields__, "other"]),
        st.one_of(st.none(), st.text(max_size=50), st.integers()),
    )
)
def test_any_form_becomes_a_message_input_of_stripped_text(form: dict[str, Any]) -> None:
    msg = MessageInput.from_form(form)
    for name in MessageInput.__dataclass_fields__:
        value = getattr(msg, name)
        assert isinstance(value, str) and value == value.strip()


def test_the_registration_form_never_answers_500(client) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import csrf, sign_in

    sign_in(client, "zx.clerk")
    token = csrf(client)
    fields = list(MessageInput.__dataclass_fields__)

    @settings(FUZZ, max_examples=40)
    @given(st.fixed_dictionaries({}, optional={f: st.text(max_size=80) for f in fields}))
    def fuzz(form: dict[str, str]) -> None:
        response = client.post("/cases", data=form, headers={"x-csrftoken": token}, follow_redirects=False)
        assert response.status_code in {303, 422}, response.text[:300]

    fuzz()


# --- masking --------------------------------------------------------------------------------------

_DIGIT = st.sampled_from("0123456789０１２３４５６７８９")


@FUZZ
@given(st.lists(_DIGIT, min_size=7, max_size=20).map("".join), st.sampled_from(["", "-", " ", "+86 "]))
def test_a_masked_phone_keeps_at_most_seven_digits_and_never_the_middle(digits: str, prefix: str) -> None:
    phone = prefix + digits
    masked = mask_phone(phone)
    shown = [c for c in masked if c.isdigit()]
    assert len(shown) <= 7 + sum(c.isdigit() for c in prefix)
    assert masked.count("*") >= len(digits) - 7
    assert len(masked) == len(phone)
    assert digits not in masked


@FUZZ
@given(st.text(min_size=1, max_size=20))
def test_a_masked_name_shows_one_character_at_most(name: str) -> None:
    masked = mask_name(name)
    stripped = name.strip()
    if stripped:
        assert masked[0] == stripped[0] and set(masked[1:]) <= {"*"}
    else:
        assert masked == ""


@FUZZ
@given(st.emails())
def test_a_masked_email_keeps_the_domain_and_one_letter(email: str) -> None:
    masked = mask_email(email)
    local, _, domain = email.rpartition("@")
    assert masked.endswith("@" + domain) and masked.startswith(local[0])
    assert masked == local[0] + "***@" + domain  # nothing of the local part but its first letter


@FUZZ
@given(st.text(max_size=200))
def test_public_masking_is_idempotent_on_any_text(text: str) -> None:
    once = mask(text)
    assert mask(once) == once


# --- Excel exports: citizens' text stays text ---------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=30).map(lambda s: "=" + s if s[:1] in "0aA" else s), min_size=1, max_size=6))
def test_any_text_in_an_export_is_read_back_as_that_text_never_a_formula(values: list[str]) -> None:
    from openpyxl import Workbook, load_workbook

    from app.security.spreadsheet import append_row, clean, text_cell

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    append_row(sheet, values)
    streamed = Workbook(write_only=True)
    ws = streamed.create_sheet("s")
    ws.append([text_cell(ws, v) for v in values])
    for made in (book, streamed):
        out = io.BytesIO()
        made.save(out)
        read = load_workbook(io.BytesIO(out.getvalue()))
        cells = next(read.worksheets[0].iter_rows())
        expected = [clean(v) or None for v in values]
        assert [c.value for c in cells][: len(values)] == expected
        assert not [c.coordinate for c in cells if c.data_type == "f"]  # no formula, whatever the text
