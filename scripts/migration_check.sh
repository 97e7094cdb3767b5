#!/usr/bin/env bash
# Zero-downtime migration check (docs/operations.md, "Migrations without downtime").
#
# The previous release's code must keep working on a database that this release's migrations have
# upgraded, because during a rolling deploy the old web processes and workers still run while
# `minpan migrate` has already run (expand/contract). This script:
#
#   1. exports the previous release (MINPAN_PREVIOUS_RELEASE, default HEAD~1) with `git archive`
#      into a temporary folder (the repository and its work tree are not touched);
#   2. builds a fresh database with the PREVIOUS release's migrations and demo data;
#   3. upgrades it to head with THIS release's `minpan migrate`;
#   4. starts the PREVIOUS release's web app on that database and runs a smoke test over HTTP:
#      sign in, list the inbox, take a workflow step (receive), list the centre's cases;
#   5. the same smoke against THIS release, so the check itself is known to work.
#
# Database: MINPAN_CHECK_DATABASE_URL (an empty PostgreSQL database owned by the app's role), else
# a temporary SQLite file. 1.5–3 minutes on a 2-core machine. Exit 0 = compatible.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY="$ROOT/.venv/bin/python"
previous=${MINPAN_PREVIOUS_RELEASE:-HEAD~1}

if ! git rev-parse --verify -q "$previous^{commit}" >/dev/null; then
  echo "migration check: no previous release ($previous) in this clone; skipped"
  exit 0
fi
tmp=$(mktemp -d /tmp/minpan-migcheck.XXXXXX)
web_pid=""
cleanup() {
  if [ -n "$web_pid" ]; then kill "$web_pid" 2>/dev/null || true; wait "$web_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

git archive --format=tar "$previous" | tar -x -C "$tmp" --one-top-level=prev
prev_heads=$(ls "$tmp/prev/app/migrations/versions" | sort)
this_heads=$(ls app/migrations/versions | sort)
new=$(comm -13 <(echo "$prev_heads") <(echo "$this_heads") | grep '\.py$' || true)
echo "==> migration check: previous release $(git rev-parse --short "$previous"); new migrations: ${new:-none}"

# A migration that cannot be made backward compatible (a contract step that needs a maintenance
# window) is named in deploy/BREAKING_MIGRATIONS, one revision file name a line, on purpose; then
# the old-code smoke is skipped for this release and the operator plans downtime
# (docs/operations.md).
if [ -n "$new" ] && [ -f deploy/BREAKING_MIGRATIONS ]; then
  if echo "$new" | grep -qxFf <(grep -v '^#' deploy/BREAKING_MIGRATIONS | sed '/^$/d'); then
    echo "==> a new migration is listed in deploy/BREAKING_MIGRATIONS: this release needs downtime; check skipped"
    exit 0
  fi
fi

url=${MINPAN_CHECK_DATABASE_URL:-sqlite:///$tmp/check.sqlite3}
export MINPAN_DATABASE_URL="$url"
export MINPAN_BROKER_URL=stub          # no background work: the smoke is the web request path
export MINPAN_ENVIRONMENT=test
export MINPAN_SECRET_KEY=migration-check-secret-key-0123456789abcdef
export MINPAN_ARGON2_TIME_COST=1 MINPAN_ARGON2_MEMORY_COST=1024
export MINPAN_VAR_DIR="$tmp/var"
export MINPAN_METRICS_DIR="$tmp/metrics"
# Both releases seal and open citizens' contact data with the same key, as in a real deploy.
export MINPAN_DATA_KEYS="check:GG3E7HWjgb3ivgnaARn/H5Xb6/b4bxCSHED9dBZ4ONw="

if [[ "$url" == postgresql* ]]; then
  "$PY" - <<'PY'
import os
from sqlalchemy import create_engine, text
engine = create_engine(os.environ["MINPAN_DATABASE_URL"])
with engine.begin() as conn:
    conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
    conn.execute(text("CREATE SCHEMA public"))
PY
fi

echo "==> the previous release builds its schema and demo data"
(cd "$tmp/prev" && PYTHONPATH="$tmp/prev" "$PY" -m app.cli migrate >/dev/null \
  && PYTHONPATH="$tmp/prev" "$PY" -m app.cli demo >/dev/null)

# A leader enrolled in two-factor sign-in by the previous release's own code: the secret as that
# release stores it (sealed or not), which this release's migrations must keep usable by both.
(cd "$tmp/prev" && PYTHONPATH="$tmp/prev" "$PY" - <<'PY'
from datetime import UTC, datetime
from sqlalchemy import select
import app.models  # noqa: F401
from app.accounts.models import User
from app.db import system_session
with system_session() as db:
    user = db.scalar(select(User).where(User.username == "horqin.principal"))
    user.totp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    user.totp_confirmed_at = datetime.now(UTC)
PY
)

# A 承办单 and a citizen's attachment as the previous release stores them (in plaintext before the
# files were sealed): after this release's migrations they are sealed at rest, and both releases
# must still serve them whole.
(cd "$tmp/prev" && PYTHONPATH="$tmp/prev" "$PY" - "$tmp/files.json" <<'PY'
import hashlib, json, sys
from sqlalchemy import select
from sqlalchemy.orm import undefer
import app.models  # noqa: F401
from app.cases.models import Assignment, Attachment, Case
from app.db import system_session
from app.documents import services as documents
with system_session() as db:
    case = db.scalar(select(Case).where(Case.source_id == "TL-2026-110301"))
    lead = db.scalar(select(Assignment).where(Assignment.case_id == case.id, Assignment.is_lead))
    sheet = documents.issue_for(db, "assignment_sheet", lead)
    db.flush()
    pdf = documents.pdf_bytes(sheet)
    photo = db.scalar(select(Attachment).where(Attachment.case_id == case.id).options(undefer(Attachment.data)))
    data = photo.data
    files = {"lead": lead.id, "sheet": sheet.id, "photo": photo.id,
             "sheet_sha256": hashlib.sha256(pdf).hexdigest(), "photo_sha256": hashlib.sha256(data).hexdigest()}
with open(sys.argv[1], "w") as out:
    json.dump(files, out)
PY
)

echo "==> this release migrates it to head"
"$PY" -m app.cli migrate
"$PY" - "$tmp/files.json" <<'PY'
import json, sys
from sqlalchemy import text
import app.models  # noqa: F401
from app.db import system_session
from app.security.crypto import ENCRYPTED_BLOBS
files = json.load(open(sys.argv[1]))
with system_session() as db:
    for table, row in (("documents", files["sheet"]), ("attachments", files["photo"])):
        column = ENCRYPTED_BLOBS[table][0]
        stored = db.execute(text(f"SELECT {column} FROM {table} WHERE id = :i"), {"i": row}).scalar_one()
        # Sealed at rest once this release's migrations have run (the previous release's own,
        # plaintext-era rows as well as what it wrote).
        assert bytes(stored).startswith(b"enc1:"), f"{table}.{column} {row} is not sealed"
PY

smoke() {  # $1 = folder of the release to run
  local port
  port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # uvicorn directly: an old release's `minpan serve` may refuse a schema newer than it knows.
  (cd "$1" && PYTHONPATH="$1" exec "$PY" -m uvicorn app.app:create_app --factory \
     --host 127.0.0.1 --port "$port" --log-level warning) > "$tmp/web.log" 2>&1 &
  web_pid=$!
  "$PY" - "$port" "$tmp/files.json" <<'PY' || { cat "$tmp/web.log"; return 1; }
import re, sys, time
import httpx
base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(120):
    try:
        if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
            break
    except httpx.HTTPError:
        pass
    time.sleep(0.5)
else:
    sys.exit("the web app did not start")

def session(username):
    c = httpx.Client(base_url=base, timeout=30)
    c.get("/login")
    r = c.post("/login", data={"username": username, "password": "Tongliao#2026"},
               headers={"x-csrftoken": c.cookies["minpan_csrf"]})
    assert r.status_code in (302, 303), (username, r.status_code, r.text[:300])
    return c

unit = session("naiman.handler")
inbox = unit.get("/inbox")
assert inbox.status_code == 200, inbox.status_code
ids = sorted(set(re.findall(r'href="/inbox/(\d+)"', inbox.text)))
assert ids, "the inbox lists nothing"
done = False
for i in ids:
    page = unit.get(f"/inbox/{i}")
    assert page.status_code == 200
    if f"/inbox/{i}/act/receive" in page.text:
        form = page.text[page.text.index(f"/inbox/{i}/act/receive"):]
        version = re.search(r'name="version" value="(\d+)"', form).group(1)
        r = unit.post(f"/inbox/{i}/act/receive", data={"version": version},
                      headers={"x-csrftoken": unit.cookies["minpan_csrf"]})
        assert r.status_code in (302, 303), (r.status_code, r.text[:500])
        assert unit.get(f"/inbox/{i}").status_code == 200
        done = True
        break
assert done, "no assignment to receive"
other = session("horqin.handler")  # staff without a second factor (two-factor sign-in)
assert other.get("/inbox").status_code == 200

import hashlib, json  # the 承办单 and the attachment stored before the upgrade come back whole
files = json.load(open(sys.argv[2]))
for url, digest in ((f"/documents/{files['sheet']}", files["sheet_sha256"]),
                    (f"/inbox/{files['lead']}/attachments/{files['photo']}", files["photo_sha256"])):
    r = other.get(url)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == digest, (url, r.status_code)

import pyotp  # the leader enrolled before the upgrade signs in with a code from their app
leader = httpx.Client(base_url=base, timeout=30)
leader.get("/login")
r = leader.post("/login", data={"username": "horqin.principal", "password": "Tongliao#2026"},
                headers={"x-csrftoken": leader.cookies["minpan_csrf"]})
assert r.status_code == 303 and r.headers["location"] == "/login/two-factor", (r.status_code, r.text[:300])
totp = pyotp.TOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
for attempt in range(2):  # a code is accepted once: the other release's smoke may have used this one
    r = leader.post("/login/two-factor", data={"code": totp.now()},
                    headers={"x-csrftoken": leader.cookies["minpan_csrf"]})
    if r.status_code in (302, 303) and r.headers["location"] != "/login/two-factor":
        break
    time.sleep(31 - time.time() % 30)
else:
    sys.exit(f"the enrolled leader could not sign in with a code: {r.status_code} {r.text[:300]}")
assert leader.get("/inbox").status_code == 200
print("    smoke passed: sign in, inbox, receive, another unit's inbox and files, a leader's second factor")
PY
  kill "$web_pid" 2>/dev/null || true
  wait "$web_pid" 2>/dev/null || true
  web_pid=""
}

echo "==> the previous release's code on the upgraded schema"
smoke "$tmp/prev"
echo "==> this release's code on it"
"$PY" -m app.cli demo >/dev/null     # idempotent; the previous smoke took the one pending step
"$PY" - <<'PY'
# Put one assignment back to pending so this release's smoke has a step to take.
import os
from sqlalchemy import create_engine, text
engine = create_engine(os.environ["MINPAN_DATABASE_URL"])
with engine.begin() as conn:
    if engine.dialect.name == "postgresql":
        conn.execute(text("SELECT set_config('minpan.system', 'on', true)"))
    conn.execute(text("UPDATE assignments SET state = 'pending' WHERE id = "
                      "(SELECT min(a.id) FROM assignments a JOIN workspaces w ON w.id = a.workspace_id "
                      "WHERE w.slug = 'naiman')"))
PY
smoke "$ROOT"
echo "==> migration check passed"
