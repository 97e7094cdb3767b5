#!/usr/bin/env bash
# Refreshes the vendored front-end files from the npm registry at pinned versions, then records
# their checksums (scripts/install.sh verifies them). Run by hand when upgrading; not at install.
set -euo pipefail
cd "$(dirname "$0")/.."
HTMX_VERSION=2.0.11  # htmx 2.x: stable; 4.x is npm's "latest" but a different API
SIGNATURE_PAD_VERSION=5.1.4
ECHARTS_VERSION=6.1.0  # loaded only by the open statistics page (/stats)
tmp=$(mktemp -d)
(cd "$tmp" && npm pack -q "htmx.org@${HTMX_VERSION}" >/dev/null && tar xzf "htmx.org-${HTMX_VERSION}.tgz")
cp "$tmp/package/dist/htmx.min.js" "static/vendor/htmx-${HTMX_VERSION}.min.js"
cp "$tmp/package/LICENSE" static/vendor/htmx.LICENSE
rm -rf "$tmp/package"
(cd "$tmp" && npm pack -q "signature_pad@${SIGNATURE_PAD_VERSION}" >/dev/null && tar xzf "signature_pad-${SIGNATURE_PAD_VERSION}.tgz")
cp "$tmp/package/dist/signature_pad.umd.min.js" "static/vendor/signature_pad-${SIGNATURE_PAD_VERSION}.umd.min.js"
rm -rf "$tmp/package"
(cd "$tmp" && npm pack -q "echarts@${ECHARTS_VERSION}" >/dev/null && tar xzf "echarts-${ECHARTS_VERSION}.tgz")
mkdir -p static/vendor/echarts
cp "$tmp/package/dist/echarts.min.js" "static/vendor/echarts/echarts-${ECHARTS_VERSION}.min.js"
cp "$tmp/package/LICENSE" "$tmp/package/NOTICE" static/vendor/echarts/
cp "$tmp/package/licenses/LICENSE-d3" static/vendor/echarts/
(cd static/vendor && sha256sum ./*.js ./echarts/*.js | sed 's# \./# #' > SHA256SUMS)
rm -rf "$tmp"
