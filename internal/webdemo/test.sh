#!/usr/bin/env bash
# Browser-side checks of rsgate, for .ci/run: installs what they need (Debian chromium, the npm project's
# dependencies), checks that the committed bundle matches its sources, then runs the Go tests of
# internal/webdemo (demo page served, rsocket-js 1.0.0-alpha.3 and 0.0.27 Node clients through /rsocket,
# headless Chromium on the demo page) and the ingress WebSocket tests.
#
#   internal/webdemo/test.sh                      screenshot kept in the test's temp dir (path logged)
#   RSGATE_SCREENSHOT=docs/demo.png internal/webdemo/test.sh    also refresh the README screenshot
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing nodejs and npm" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "installing chromium (Debian package)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

(cd js && npm ci --no-audit --no-fund >/dev/null)
# The bundle is committed so that `go build` needs no npm: it must match the sources.
committed="$(mktemp)"
trap 'rm -f "$committed"' EXIT
cp static/app.js "$committed"
(cd js && npm run --silent build >/dev/null 2>&1)
if ! cmp -s static/app.js "$committed"; then
  echo "static/app.js is out of date: commit the rebuilt bundle (cd internal/webdemo/js && npm run build)" >&2
  exit 1
fi

if [ -n "${RSGATE_SCREENSHOT:-}" ]; then
  case "$RSGATE_SCREENSHOT" in /*) ;; *) export RSGATE_SCREENSHOT="$root/$RSGATE_SCREENSHOT" ;; esac
fi
cd "$root"
export RSGATE_BROWSER_TESTS=1 # the npm/node/Chromium tests skip without it (go test ./... stays hermetic)
go test -count=1 -v -run 'TestPageServed|TestNodeClients|TestBrowser' ./internal/webdemo
go test -race -count=1 -run 'TestWS' ./ingress
