#!/usr/bin/env bash
# Runs rsgate's RSocket interop suite: rsocket-go v0.8.12 (both directions, TCP and WebSocket) and
# rsocket-js 0.0.27 / 1.0.0-alpha.3 clients against our server. Exits non-zero on any failure.
#
#   bench/interop/run.sh            # everything
#   RACE=1 bench/interop/run.sh     # with -race (rsocket-go v0.8.12 itself has data races: expect reports from it)
#   bench/interop/run.sh -run 'TestInterop/rsgo-to-ours'   # extra args go to `go test`
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "run.sh: installing node (apt-get)"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
	else
		echo "run.sh: node not found; TestRSocketJS will be skipped" >&2
	fi
fi
if command -v npm >/dev/null 2>&1; then
	for v in js/v0 js/v1; do
		if [ ! -d "$v/node_modules" ]; then
			echo "run.sh: npm ci in $v"
			(cd "$v" && npm ci --no-audit --no-fund --loglevel=error)
		fi
	done
fi

race=
if [ "${RACE:-0}" = 1 ]; then race=-race; fi
if ! go list -test -deps ./... >/dev/null 2>&1; then
	# The main module gained dependencies since go.sum was last tidied here.
	echo "run.sh: bench/interop/go.sum is stale: go mod tidy" >&2
	GOFLAGS="$(printf '%s' "${GOFLAGS:-}" | sed 's/-mod=[a-z]*//g')" go mod tidy
fi
go vet ./...
# 2,000 concurrent requests, 1 MiB payloads and the node scripts stay well under this bound.
exec go test $race -count=1 -timeout 210s "$@" ./...
