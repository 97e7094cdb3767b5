"""``minpan audit verify | purge`` and ``minpan user reset-2fa`` (registered in app/cli.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click


@click.group("audit")
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
def verify() -> None:
    """Check the hash chain of the audit log; exit 1 and name every edited or deleted entry."""
    from app.audit.chain import verify as verify_chain
    from app.db import system_session

    with system_session() as db:
        report = verify_chain(db)
    if report.ok:
        purged = f" (entries up to seq {report.anchor_seq} purged by retention)" if report.anchor_seq else ""
        click.echo(
            f"audit chain intact: {report.checked} entries, seq {report.first_seq}–{report.last_seq}{purged}"
        )
        click.echo(f"head {report.head_hash}  (keep this outside the database to detect a rewritten chain)")
        return
    click.echo(f"audit chain BROKEN: {len(report.problems)} problem(s) in {report.checked} entries", err=True)
    for problem in report.problems:
        click.echo(f"  - {problem}", err=True)
    raise SystemExit(1)


@audit.command("purge")
@click.option(
    "--older-than-days",
    "days",
    type=int,
    default=None,
    help="delete entries older than this many days (at least 180)",
)
@click.option("--before", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="cut-off date (UTC)")
def purge(days: int | None, before: datetime | None) -> None:
    """Delete audit entries past retention (≥180 days), keeping the rest of the chain verifiable."""
    from app.audit.chain import RETENTION_DAYS, RetentionRefused
    from app.audit.chain import purge as purge_chain
    from app.db import system_session, utcnow

    if (days is None) == (before is None):
        raise click.UsageError("give exactly one of --older-than-days or --before")
    cutoff = utcnow() - timedelta(days=days) if days is not None else before.replace(tzinfo=UTC)  # type: ignore[union-attr]
    try:
        with system_session() as db:
            result = purge_chain(db, cutoff)
    except RetentionRefused as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{result.deleted} entries older than {cutoff:%Y-%m-%d} deleted; the chain now starts after seq"
        f" {result.anchor_seq} (retention {RETENTION_DAYS} days)"
    )


@click.command("reset-2fa")
@click.argument("username")
def reset_two_factor(username: str) -> None:
    """Clear a person's second factor (they enrol again at the next sign-in); audited."""
    from sqlalchemy import delete, select

    from app.accounts import two_factor
    from app.accounts.models import User, UserSession
    from app.audit.services import record
    from app.db import system_session

    with system_session() as db:
        account = db.scalar(select(User).where(User.username == username))
        if account is None:
            raise click.ClickException(f"no user {username!r}")
        two_factor.reset(db, account)
        db.execute(delete(UserSession).where(UserSession.user_id == account.id))
        record(db, "auth.two_factor_reset", actor_id=None, workspace_id=None, target=username, ip="cli")
    click.echo(f"{username}: two-factor sign-in reset; they enrol again at the next sign-in")
