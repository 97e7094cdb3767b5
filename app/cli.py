"""The ``minpan`` command: serve, worker, scheduler, migrate, demo and administration tasks."""

from __future__ import annotations

import getpass
import os
import signal
import sys
import threading

import click

from app.settings import get_settings


@click.group()
def main() -> None:
    """民盼通办 (Minpan) administration."""


@main.command()
@click.option("--revision", default="head", show_default=True)
def migrate(revision: str) -> None:
    """Upgrade the database schema (Alembic)."""
    from app import migrate as m

    m.upgrade(revision=revision)
    click.echo(f"database at revision {m.current_revision()}")


@main.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Downgrade the database schema to REVISION ('base' removes everything)."""
    from app import migrate as m

    m.downgrade(revision=revision)
    click.echo(f"database at revision {m.current_revision()}")


def _print_logins() -> None:
    from app.demo import DEMO_PASSWORD, load_full_demo

    logins = load_full_demo()
    click.echo(f"\n演示账户（密码均为 {DEMO_PASSWORD}）/ demo logins (password {DEMO_PASSWORD}):")
    for login in logins:
        click.echo(f"  {login.username:<22} {login.display_name:<6} {login.workspace} · {login.role}")
    click.echo(
        "\n两步验证：运维中心、督查室、主要负责人、分管领导和管理员账户首次登录时绑定手机身份验证器（TOTP），"
        "并保存 10 个恢复码。\n"
        "two-factor: centre, supervision office, principal, deputy and administrator accounts enrol an"
        " authenticator app (TOTP) at their first sign-in; `minpan user reset-2fa NAME` starts over."
    )


@main.command()
def demo() -> None:
    """Load the units of Tongliao and the demo people (idempotent); print the logins."""
    _print_logins()


@main.group()
def units() -> None:
    """Workspaces from the units list."""


@units.command("import")
@click.argument("csv_path", required=False, type=click.Path(exists=True, dir_okay=False))
def units_import(csv_path: str | None) -> None:
    """Create a workspace for every unit in CSV_PATH (default: data/tongliao_units.csv)."""
    from pathlib import Path

    from app.db import system_session
    from app.tenants.services import import_units

    path = Path(csv_path) if csv_path else get_settings().data_dir / "tongliao_units.csv"
    with system_session() as db:
        created = import_units(db, path)
    click.echo(f"{created} workspaces created")


@main.command()
@click.option("--host", default=None)
@click.option("--port", default=None, type=int)
@click.option("--workers", default=1, show_default=True, help="web processes")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the web portal (uvicorn). On the embedded default it also runs the worker and scheduler."""
    import uvicorn

    from app import migrate as m

    settings = get_settings()
    if workers > 1 and settings.in_process_worker:
        raise click.ClickException(
            "several web processes need a shared broker (MINPAN_BROKER_URL) and separate "
            "`minpan worker` / `minpan scheduler` processes: the embedded default runs one process"
        )
    from app.ops.setup import logging_config, prepare_metrics_dir, schema_check

    if schema_check(m.current_revision()) != "ok":  # at head, or ahead (a rolling deploy: expand/contract)
        raise click.ClickException("the database is not at the newest schema: run `minpan migrate` first")

    prepare_metrics_dir(settings)  # before prometheus_client is imported (app/observability.py)
    uvicorn.run(
        "app.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
        log_config=logging_config(settings),
        access_log=False,  # the access log is ours (minpan.access, with the request id)
        # Longer than nginx's upstream keep-alive (60 s): otherwise uvicorn closes an idle connection
        # just as the proxy reuses it, and the request fails ("Server disconnected"; bench/load.py).
        timeout_keep_alive=75,
    )


@main.command()
@click.option("--host", default=None)
@click.option("--port", default=None, type=int)
def up(host: str | None, port: int | None) -> None:
    """The embedded default in one step: migrate, load demo data, print the logins, serve."""
    from app import migrate as m

    m.upgrade()
    _print_logins()
    settings = get_settings()
    click.echo(f"\n门户已启动 / portal running: http://{host or settings.host}:{port or settings.port}\n")
    ctx = click.get_current_context()
    ctx.invoke(serve, host=host, port=port, workers=1)


@main.command()
@click.option("--processes", default=2, show_default=True)
@click.option("--threads", default=8, show_default=True)
def worker(processes: int, threads: int) -> None:
    """Run Dramatiq worker processes (production: needs MINPAN_BROKER_URL)."""
    if get_settings().in_process_worker:
        raise click.ClickException("set MINPAN_BROKER_URL (redis://… or amqp://…) to run separate workers")
    from app.ops.setup import prepare_metrics_dir

    prepare_metrics_dir()  # job metrics of this machine's workers, summed by /metrics
    args = ["dramatiq", "tasks.actors", "--processes", str(processes), "--threads", str(threads)]
    os.execvp(sys.executable, [sys.executable, "-m", *args])  # noqa: S606


@main.command()
def scheduler() -> None:
    """Run the one scheduler process that enqueues periodic jobs."""
    from tasks import scheduler as sched

    if get_settings().in_process_worker:
        raise click.ClickException("set MINPAN_BROKER_URL: the embedded default schedules in-process")
    from app.ops.setup import configure_logging

    configure_logging()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo("scheduler running")
    sched.run(stop)


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def backup(path: str) -> None:
    """Write the whole database and the signing PKI to PATH (a portable .tar.gz: SQLite and
    PostgreSQL alike; a consistent snapshot while the portal runs)."""
    from app.ops.backup import backup as make_backup

    manifest = make_backup(path)
    rows = sum(manifest["tables"].values())
    click.echo(
        f"backup written to {path}: {len(manifest['tables'])} tables, {rows} rows, "
        f"{len(manifest['files'])} files, schema {manifest['revision']}"
    )


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def restore(path: str) -> None:
    """Restore a backup made by `minpan backup` into an EMPTY database (MINPAN_DATABASE_URL),
    and its PKI into MINPAN_PKI_DIR. Refuses a database that has people in it."""
    from app.ops.backup import BackupError
    from app.ops.backup import restore as load_backup

    try:
        manifest = load_backup(path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    rows = sum(manifest["tables"].values())
    click.echo(
        f"restored {rows} rows in {len(manifest['tables'])} tables and "
        f"{len(manifest['files'])} files; every checksum matched"
    )


@main.command()
@click.argument("received", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--json", "as_json", is_flag=True, help="print a JSON object")
def deadline(received: object, as_json: bool) -> None:
    """The reply due date, the reminder day and the latest extended due date for a sheet received
    on RECEIVED (YYYY-MM-DD), on the official working-day calendar."""
    import json
    from datetime import datetime

    from app.workflows.deadlines import reply_deadline

    assert isinstance(received, datetime)
    result = reply_deadline(received.date())
    if as_json:
        click.echo(json.dumps(result.as_json(), ensure_ascii=False))
        return
    mark = "（暂定：该年放假安排尚未录入）" if result.provisional else ""
    click.echo(f"收到日期     {result.received:%Y-%m-%d}")
    click.echo(f"答复期限     {result.due:%Y-%m-%d}{mark}")
    click.echo(f"催办提醒     {result.reminder:%Y-%m-%d}")
    click.echo(f"最长延期至   {result.extended_max:%Y-%m-%d}")
    click.echo(result.explanation)


@main.command()
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="default: today")
def sweep(day: object) -> None:
    """Run the deadline sweep now (提醒单 / 催办单 / 督办单 due on the day, each once) and fan out
    its notices here; safe beside the scheduler's sweeps. Prints what it issued."""
    from datetime import UTC, datetime

    from app.escalation.services import sweep as run_sweep
    from app.workflows.deadlines import local_date

    today = day.date() if isinstance(day, datetime) else local_date(datetime.now(UTC))
    result = run_sweep(today, fan_out_now=True)
    issued = result.issued
    click.echo(
        f"{today:%Y-%m-%d} 期限巡查：提醒单 {issued['reminder']} 件，催办单 {issued['urge']} 件，"
        f"督办单 {issued['supervise']} 件（{len(result.workspaces)} 个单位）；"
        f"逾期未发布提示 {result.publication_overdue} 件。"
    )


@main.group()
def user() -> None:
    """People and their roles."""


@user.command("create")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="姓名")
@click.option("--workspace", "slug", required=True, help="workspace slug")
@click.option("--role", required=True)
@click.option("--password", default=None, help="initial password (prompted when omitted)")
def user_create(username: str, display_name: str, slug: str, role: str, password: str | None) -> None:
    """Create an account with one role in one workspace (the first system administrator, say)."""
    from sqlalchemy import select

    from app.accounts.models import User
    from app.accounts.passwords import check_password_strength, hash_password
    from app.audit.services import record
    from app.db import system_session
    from app.errors import InvalidInput
    from app.permissions import ROLES_BY_KIND
    from app.tenants.models import Membership, Workspace
    from app.tenants.services import validate_new_person

    password = password or getpass.getpass("初始密码 / initial password: ")
    try:
        validate_new_person(username, display_name, "", "")
        check_password_strength(password, username)
    except InvalidInput as exc:
        raise click.ClickException(exc.message) from exc
    with system_session() as db:
        ws = db.scalar(select(Workspace).where(Workspace.slug == slug))
        if ws is None:
            raise click.ClickException(f"no workspace {slug!r}")
        if role not in {r.value for r in ROLES_BY_KIND[ws.kind]}:
            raise click.ClickException(f"role {role!r} does not exist in a {ws.kind} workspace")
        if db.scalar(select(User.id).where(User.username == username)):
            raise click.ClickException(f"username {username!r} is taken")
        account = User(
            username=username,
            display_name=display_name,
            password_hash=hash_password(password),
            must_change_password=True,
        )
        db.add(account)
        db.flush()
        db.add(Membership(workspace_id=ws.id, user_id=account.id, role=role))
        record(
            db, "staff.user_created", actor_id=None, workspace_id=ws.id, target=username, ip="cli", role=role
        )
    click.echo(f"created {username} as {role} in {slug}")


@user.command("unlock")
@click.argument("username")
def user_unlock(username: str) -> None:
    """Lift a sign-in lockout."""
    from sqlalchemy import select

    from app.accounts.models import User
    from app.audit.services import record
    from app.db import system_session

    with system_session() as db:
        account = db.scalar(select(User).where(User.username == username))
        if account is None:
            raise click.ClickException(f"no user {username!r}")
        account.locked_until = None
        account.failed_logins = 0
        record(db, "auth.unlocked", actor_id=None, workspace_id=None, target=username, ip="cli")
    click.echo(f"{username} unlocked")


from app.audit.cli import audit as _audit_group  # noqa: E402
from app.audit.cli import reset_two_factor as _reset_two_factor  # noqa: E402

main.add_command(_audit_group)
user.add_command(_reset_two_factor)


@main.group("api-token")
def api_token() -> None:
    """Access tokens of the message board feed (POST /api/v1/messages)."""


@api_token.command("create")
@click.option("--name", required=True, help="who uses it, e.g. 留言板推送")
@click.option("--workspace", "slug", default=None, help="the centre's slug (when there is more than one)")
def api_token_create(name: str, slug: str | None) -> None:
    """Create a token for the centre's workspace and print it once (only its SHA-256 is kept)."""
    from app.cases.tokens import create_token
    from app.db import system_session
    from app.errors import MinpanError

    try:
        with system_session() as db:
            token, plain = create_token(db, name, slug)
            token_id = token.id
    except MinpanError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"token {token_id} ({name}) created; it is shown only this once:", err=True)
    click.echo(plain)


@api_token.command("revoke")
@click.option("--name", required=True)
def api_token_revoke(name: str) -> None:
    """Revoke the active token(s) of that name."""
    from app.cases.tokens import revoke_token
    from app.db import system_session

    with system_session() as db:
        count = revoke_token(db, name)
    if not count:
        raise click.ClickException(f"no active token named {name!r}")
    click.echo(f"{count} token(s) revoked")


@api_token.command("list")
def api_token_list() -> None:
    """Tokens with their state and last use (never the token itself)."""
    from app.cases.tokens import list_tokens
    from app.db import system_session

    with system_session() as db:
        for t in list_tokens(db):
            state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
            used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
            click.echo(f"{t.id:>4}  {t.name:<24} {state:<24} last used {used}")


if __name__ == "__main__":
    main()


@main.group()
def keys() -> None:
    """Keys that seal personal data at rest (MINPAN_DATA_KEYS): citizens' contact data, the
    second-factor secrets, the documents' PDFs and the attachments."""


@keys.command("generate")
@click.option("--id", "key_id", default=None, help="key id (default: random)")
def keys_generate(key_id: str | None) -> None:
    """Print a new key entry; put it FIRST in MINPAN_DATA_KEYS to make it the active key."""
    from app.security.crypto import generate_key_line

    click.echo(generate_key_line(key_id))


@keys.command("status")
def keys_status() -> None:
    """How many sealed values each key id holds; an old key may go once it holds none."""
    from app.db import system_session
    from app.security.crypto import keyring
    from app.security.rotation import status

    ring = keyring()
    click.echo(f"active key: {ring.active}; configured: {', '.join(ring.keys)}")
    with system_session() as db:
        for column, counts in status(db).items():
            shown = ", ".join(f"{k}={n}" for k, n in sorted(counts.items())) or "—"
            click.echo(f"  {column:<28} {shown}")


@keys.command("rotate")
@click.option("--batch", default=500, show_default=True, help="rows per transaction")
@click.option(
    "--blob-batch", default=20, show_default=True, help="rows per transaction for PDFs and attachments"
)
def keys_rotate(batch: int, blob_batch: int) -> None:
    """Re-seal every value under the active key (the first of MINPAN_DATA_KEYS), in batches."""
    from app.db import system_session
    from app.security.crypto import keyring
    from app.security.rotation import rotate

    ring = keyring()
    report = rotate(system_session, ring, batch=batch, blob_batch=blob_batch)
    click.echo(
        f"re-sealed {report.rewritten} values in {report.rows} rows ({report.batches} batches) "
        f"with key {ring.active}; {report.skipped} rows changed meanwhile and were left as written"
    )
