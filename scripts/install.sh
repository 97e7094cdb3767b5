#!/usr/bin/env bash
# Installs everything Minpan needs on Debian 12 (or a later Debian/Ubuntu), idempotently:
# system packages (CJK fonts, HarfBuzz subsetting for fast PDFs, Pango for WeasyPrint), a Python
# virtual environment with the project, and — with --dev — the test tools, Debian's Chromium and nginx.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

packages=(python3 python3-venv fonts-noto-cjk libharfbuzz-subset0 libpango-1.0-0 libpangoft2-1.0-0
          libcairo2 poppler-utils graphviz ca-certificates)
# Tests: Chromium for the browser tests, nginx to check deploy/nginx/minpan.conf in front of two web processes.
if [ "$dev" = 1 ]; then packages+=(chromium nginx-light); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing system packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
"$python" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"Minpan needs Python 3.11 or newer, found {sys.version.split()[0]}")
PY

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$python" -m venv .venv
fi

extra=""
[ "$dev" = 1 ] && extra="[dev]"
stamp=".venv/.minpan-installed${extra}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "==> installing Python packages${extra}"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${extra}"
  echo "$want" > "$stamp"
fi

# The front-end files are vendored in static/vendor (the portal runs with no internet): check them.
(cd static/vendor && sha256sum --quiet -c SHA256SUMS)
