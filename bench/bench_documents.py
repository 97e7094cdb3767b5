"""Document rendering speed: each kind of document, the 承办单 against bare WeasyPrint, throughput.

Usage: .venv/bin/python bench/bench_documents.py [--runs 15] [--docs 60]

The documents render from plain data (app/documents/sources.py), so no database is needed: the
sources below are filled as the demo's would be (a long case file: 40 steps, 5 notices). Reports

* the median render time of each kind (Jinja + WeasyPrint + our font configuration), warm;
* a one-page 承办单 through ``render_document`` against the same HTML through bare
  ``weasyprint.HTML(string=…).write_pdf()`` in the same process (target: within 1.3×, under 0.5 s);
* the content hash (what a cache hit costs besides its one indexed SELECT);
* documents per second with 2 worker processes, each warmed up first (``render.warm_up``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from datetime import UTC, date, datetime, timedelta

os.environ.setdefault("MINPAN_BROKER_URL", "stub")

from weasyprint import CSS, HTML

from app.demo import demo_signature_png
from app.documents import render, services
from app.documents.sources import (
    AssignmentRecord,
    AssignmentSheet,
    CaseFile,
    Decision,
    EscalationNotice,
    ExtensionRequest,
    LeaderInstruction,
    Message,
    ReplyLetter,
    ReturnSheet,
    Source,
    Step,
    Unit,
)
from app.settings import get_settings

CENTRE = Unit("通辽市政府门户网站运维中心", "运维中心", "0475-8210000")
OFFICE = Unit("通辽市人民政府办公室", "市政府办公室（督查室）", "0475-8210037")
HORQIN = Unit("科尔沁区人民政府", "科尔沁区", "0475-8210111")
HOUSING = Unit("通辽市住房和城乡建设局", "市住建局", "0475-8210222")
T0 = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)
SIGNATURE = demo_signature_png()
MESSAGE = Message(
    source_id="TL-2026-110301",
    board="市长板块",
    category="咨询",
    title="明仁小区供暖温度不达标",
    body="入冬以来我家所在的科尔沁区明仁小区3号楼室温一直只有15度左右，多次给热力公司打电话没有结果，"
    "家里有老人和孩子，请领导帮忙协调解决。",
    posted_at=T0 - timedelta(days=7),
    region="科尔沁区",
    topic="城乡建设",
    citizen_name="王先生",
    citizen_phone="13847511000",
)
BASE = {"workspace_id": 3, "case_id": 1, "assignment_id": 1, "number": "通留〔2026〕1号"}


def _notice(rung: str, ordinal: int = 1) -> EscalationNotice:
    transfer = rung == "transfer"
    return EscalationNotice(
        **BASE,
        escalation_id=ordinal,
        rung=rung,
        ordinal=ordinal,
        issuer=OFFICE if transfer else CENTRE,
        unit=HORQIN,
        addressee="通辽市纪委监委" if transfer else "科尔沁区人民政府主要负责同志",
        copy_to="市政府督查室" if transfer else "",
        sheet_number="通留〔2026〕1号",
        message_title=MESSAGE.title,
        due_date=date(2026, 12, 4),
        issued_on=date(2026, 12, 9),
        reason="三次催办、一次督办均无结果，供暖问题持续两周，群众反映强烈，造成不良社会影响。"
        if transfer
        else "",
    )


def samples() -> dict[str, Source]:
    instruction = LeaderInstruction("汪军", "请科尔沁区政府高度重视，尽快解决群众供暖问题，按时答复。", T0)
    sheet = AssignmentSheet(
        **BASE,
        issuer=CENTRE,
        unit=HORQIN,
        message=MESSAGE,
        lead_unit=HORQIN.name,
        co_units=(HOUSING.name,),
        round=1,
        dispatched_at=T0,
        due_date=date(2026, 12, 4),
        instructions="请尽快核实供暖情况并答复网民。",
        leader_instructions=(instruction,),
    )
    reply = ReplyLetter(
        **BASE,
        unit=HORQIN,
        addressee=CENTRE.name,
        sheet_number="通留〔2026〕1号",
        message_title=MESSAGE.title,
        reply_text="网民朋友您好：经核查，明仁小区3号楼供暖管网存在堵塞，区住建局已督促热力公司于12月2日完成"
        "管网清洗，经回访，室温已达到20℃以上。感谢您对我区工作的关注与支持。",
        is_explanation=False,
        private=False,
        handler_name="郝斌",
        handler_phone="0475-8300011",
        signed_by="何建国",
        signature=SIGNATURE,
        signed_at=T0 + timedelta(days=4),
    )
    decision = Decision(
        "同意牵头单位退办，重新派单", "宋艳", "运维中心", T0 + timedelta(hours=3), by_centre=True
    )
    back = ReturnSheet(
        **BASE,
        unit=HORQIN,
        addressee=CENTRE.name,
        sheet_number="通留〔2026〕1号",
        message_title=MESSAGE.title,
        dispatched_at=T0,
        received_at=T0 + timedelta(hours=1),
        reason="该小区供热由市热力公司直管，不属于本单位职责范围。",
        signed_by="邓倩",
        signature=SIGNATURE,
        signed_at=T0 + timedelta(hours=2),
        decision=decision,
    )
    extension = ExtensionRequest(
        **BASE,
        unit=HORQIN,
        addressee=CENTRE.name,
        sheet_number="通留〔2026〕1号",
        message_title=MESSAGE.title,
        due_date=date(2026, 12, 8),
        days=2,
        reason="需协调热力公司现场检测并回访网民。",
        requested_by="郝斌",
        requested_at=T0 + timedelta(days=2),
        decisions=(
            Decision("单位领导同意延期申请", "邓倩", "科尔沁区", T0 + timedelta(days=2, hours=1)),
            Decision("同意延期", "宋艳", "运维中心", T0 + timedelta(days=2, hours=3), by_centre=True),
        ),
        outcome="approved",
        approved_days=2,
    )
    steps = tuple(
        Step(
            T0 + timedelta(hours=i),
            "郝斌",
            "科尔沁区",
            "起草回复意见",
            f"第{i}稿：经核查，正在协调热力公司处理。",
            False,
        )
        for i in range(1, 41)
    )
    record = AssignmentRecord(
        unit=HORQIN,
        is_lead=True,
        round=1,
        state="已报送",
        sheet_number="通留〔2026〕1号",
        dispatched_at=T0,
        due_date=date(2026, 12, 4),
        received_at=T0 + timedelta(hours=1),
        reply_text=reply.reply_text,
        signed_by="何建国",
        signature=SIGNATURE,
        signed_at=T0 + timedelta(days=4),
        return_reason="",
        return_signature="",
        contribution="",
        extension_days=2,
    )
    notices = (
        _notice("reminder"),
        _notice("urge"),
        _notice("urge", 2),
        _notice("supervise"),
        _notice("transfer"),
    )
    case_file = CaseFile(
        workspace_id=1,
        case_id=1,
        number="通留〔2026〕1号",
        centre=CENTRE,
        message=MESSAGE,
        state="已归档",
        registered_at=T0,
        dispatched_at=T0,
        due_date=date(2026, 12, 8),
        instructions="请尽快核实供暖情况并答复网民。",
        decline_reason="",
        decline_explanation="",
        decline_suggestion="",
        reply_text=reply.reply_text,
        reply_unit=HORQIN.name,
        reply_handler="郝斌",
        reply_handler_phone="0475-8300011",
        reply_signed_by="何建国",
        reply_signature=SIGNATURE,
        reply_submitted_at=T0 + timedelta(days=4),
        published_at=T0 + timedelta(days=4, hours=2),
        archived_at=T0 + timedelta(days=10),
        assignments=(record,),
        notices=notices,
        leader_instructions=(instruction,),
        timeline=steps,
        compiled_at=T0 + timedelta(days=10),
    )
    return {
        "assignment_sheet": sheet,
        "reply_letter": reply,
        "return_sheet": back,
        "extension_request": extension,
        "escalation_notice (催办单)": notices[1],
        "escalation_notice (移交函)": notices[4],
        "case_file (40 steps)": case_file,
    }


def _median(fn: object, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


# --- throughput -------------------------------------------------------------------------------------


def _worker_init() -> None:
    render.warm_up()


def _render_one(name: str) -> int:
    source = samples()[name]
    return len(render.render_document(source.template, doc=source).pdf)


def throughput(docs: int, processes: int = 2) -> float:
    names = [n for n in samples() if not n.startswith("case_file")]  # one-page documents, round robin
    jobs = [names[i % len(names)] for i in range(docs)]
    with multiprocessing.get_context("spawn").Pool(processes, initializer=_worker_init) as pool:
        pool.map(_render_one, names * processes)  # everything warm in both processes
        t0 = time.perf_counter()
        pool.map(_render_one, jobs, chunksize=1)
        return docs / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--docs", type=int, default=60)
    args = parser.parse_args()

    t0 = time.perf_counter()
    render.warm_up()
    print(f"warm-up (first render in the process): {time.perf_counter() - t0:.2f} s")

    print(f"\n{'document':32} {'pages':>5} {'KB':>6} {'p50 s':>7} {'p90 s':>7}")
    for name, source in samples().items():
        rendered = render.render_document(source.template, doc=source)
        p50, p90 = _median(lambda s=source: render.render_document(s.template, doc=s), args.runs)
        print(f"{name:32} {rendered.pages:>5} {len(rendered.pdf) / 1024:>6.0f} {p50:>7.3f} {p90:>7.3f}")

    sheet = samples()["assignment_sheet"]
    html = render.render_html(sheet.template, doc=sheet)
    css_text = (get_settings().templates_dir / "documents" / "documents.css").read_text(encoding="utf-8")
    parsed = CSS(string=css_text)
    # Interleaved, so that whatever else the machine is doing weighs on all three alike.
    variants = {
        "ours": lambda: render.render_document(sheet.template, doc=sheet),
        "bare": lambda: HTML(string=html).write_pdf(stylesheets=[parsed]),
        "bare, CSS parsed each time": lambda: HTML(string=html).write_pdf(stylesheets=[CSS(string=css_text)]),
        "bare with our FontConfiguration": lambda: HTML(string=html).write_pdf(
            stylesheets=[render.stylesheet()], font_config=render.FONT_CONFIG
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    ours, bare, naive, same = (statistics.median(times[name]) for name in variants)
    jinja, _ = _median(lambda: render.render_html(sheet.template, doc=sheet), args.runs)
    hashing, _ = _median(lambda: services.content_hash(sheet), args.runs)
    print(
        f"\n承办单 (median of {args.runs}, interleaved): render_document {ours:.3f} s; "
        f"bare WeasyPrint on the same HTML and stylesheet {bare:.3f} s (ratio {ours / bare:.2f}×); "
        f"bare, parsing the stylesheet each time {naive:.3f} s (ratio {ours / naive:.2f}×); "
        f"bare with our font configuration and parsed stylesheet {same:.3f} s (ratio {ours / same:.2f}×). "
        f"Jinja alone {jinja * 1000:.1f} ms, content hash {hashing * 1000:.2f} ms."
    )
    rate = throughput(args.docs)
    print(f"throughput, 2 worker processes, {args.docs} one-page documents: {rate:.1f} documents/s")


if __name__ == "__main__":
    main()
