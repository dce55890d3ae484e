#!/usr/bin/env bash
# rsgate benchmark suite: the gateway against what users would pick instead, in one sitting.
#
#   bench/run.sh          full run (~15-20 min): 3 repetitions, 5 s trials, 64 and 256 connections
#   bench/run.sh -quick   smoke run (~3 min): 1 repetition, 2 s trials, 64 connections, 2,000 idle connections
#
# Writes bench/RESULTS.md and the plots bench/results/*.png. Sections (bench/README.md, "bench/run.sh"):
#   1 HTTP request-response (wrk): direct fasthttp backend; nginx, haproxy, caddy as keep-alive reverse proxies;
#     the gateway to the demo RSocket service; the gateway to an rsocket-go server. 1 KiB JSON POST, 100 B GET.
#   2 tail isolation: fast-route p99 at a constant rate (loadgen, coordinated-omission aware) with and without a
#     saturated 50 ms route beside it; gateway and nginx; pinned, then again unpinned (loaded / unloaded p99
#     ratios side by side).
#   2b open loop (SECTIONS name "openloop"): nginx's capacity measured first, then gateway, nginx and haproxy at a
#     constant 20%, 50% and 80% of it (loadgen, latency from the intended send time): p50/p99/p99.9.
#   3 streams: SSE items/s (fast reader, slow readers + gateway RSS over time), WebSocket echo msgs/s (gateway,
#     nginx, caddy), RSocket over the gateway's /rsocket route.
#   4 RSocket core vs rsocket-go (bench/rsocketbench roles + bench/suite/cmd/rsfnf).
#   5 memory per idle connection: HTTP keep-alive and WebSocket, gateway vs nginx and caddy.
#   6 shipped: bench/http/run.sh with nginx and haproxy also as shipped (worker_processes auto, no nbthread),
#     pinned and unpinned (PIN=1 and PIN=0), ratios to nginx and to nginx-auto, goal check per repetition.
#   7 scale: bench/scale.sh, the same comparison with the system under test on 1 .. nproc CPUs (taskset).
#   8 balance: one slow instance of three (p2c vs weighted vs all healthy), a backend killed under load
#     (failed requests, time to recover); gateway only (bench/suite/cmd/suite/balance.go).
#
# Environment: REPS (repetitions), NICE (e.g. -10: load generators and everything under test at that nice level,
# so other work on a shared machine disturbs the trials less; it slows that work down; default unchanged), SECTIONS ("http,tail,openloop,streams,rsocket,memory,balance,shipped,scale"), PIN (1/0), NO_INSTALL=1,
# KEEP_TMP (1 = keep the temp dir with configs, logs, raw outputs and trials.json; the default),
# RESULTS (report path, default bench/RESULTS.md), GW_REF (build the gateway from this commit, e.g. HEAD,
# instead of the work tree, which may hold someone's unfinished edits).
# Everything listens on 127.0.0.1 (random free ports); only processes this run started are stopped.
set -euo pipefail

QUICK=0
for a in "$@"; do
	case "$a" in
	-quick | --quick) QUICK=1 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $a (try -h)" >&2; exit 2 ;;
	esac
done

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RESULTS=${RESULTS:-$HERE/RESULTS.md}
KEEP_TMP=${KEEP_TMP:-1}
TMP=$(mktemp -d /tmp/rsgate-bench-suite.XXXXXX)
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
SUITE_PID=
cleanup() {
	local rc=$?
	if [ -n "$SUITE_PID" ]; then kill "$SUITE_PID" 2>/dev/null || true; wait "$SUITE_PID" 2>/dev/null || true; fi
	if [ "$KEEP_TMP" = 0 ]; then rm -rf "$TMP"; else log "configs, logs and raw outputs: $TMP"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- peers
export PATH=$PATH:/usr/sbin:/sbin
need=()
for t in wrk:wrk nginx:nginx haproxy:haproxy caddy:caddy taskset:util-linux; do
	command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ] && [ "${NO_INSTALL:-0}" != 1 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing ${need[*]}"
		apt-get update -qq >"$TMP/apt.log" 2>&1 || true
		for p in "${need[@]}"; do
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >>"$TMP/apt.log" 2>&1 || log "could not install $p"
		done
	else
		log "missing ${need[*]}; cannot apt-get install them (not root)"
	fi
fi
command -v wrk >/dev/null || { echo "run.sh: wrk is required" >&2; exit 1; }

# ---- builds
mkdir -p "$TMP/bin"
SRC=$ROOT
TREE="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$ROOT" diff --quiet HEAD -- . ':!bench' 2>/dev/null || TREE="$TREE + uncommitted changes in the work tree"
if [ -n "${GW_REF:-}" ]; then
	SRC=$TMP/src
	mkdir -p "$SRC"
	git -C "$ROOT" archive "$GW_REF" | tar -x -C "$SRC"
	TREE="$(git -C "$ROOT" rev-parse --short "$GW_REF") (GW_REF=$GW_REF, clean copy)"
fi
log "building into $TMP/bin"
(cd "$SRC" && go build -o "$TMP/bin/gateway" ./cmd/gateway)
(cd "$SRC/bench/http" && go build -o "$TMP/bin/" ./cmd/httpbackend ./cmd/rsbackend)
(cd "$SRC/bench/rsocketbench" && go build -o "$TMP/bin/rsocketbench" .)
(cd "$HERE/suite" && go build -o "$TMP/bin/" ./cmd/loadgen ./cmd/upstream ./cmd/rsgoserver ./cmd/rsfnf ./cmd/rsdelay ./cmd/suite)

# ---- open files: a WebSocket proxy holds two sockets per client
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---- machine and versions
ver() { "$@" 2>&1 | head -1 | tr -d '\r' || true; }
{
	if [ "$QUICK" = 1 ]; then echo "Mode: quick (-quick): 1 repetition, short trials — indicative only"; else echo "Mode: full"; fi
	echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r); load average at start $(cut -d' ' -f1-3 /proc/loadavg); open-files limit $(ulimit -n)"
	echo "Gateway built from: $TREE; $(go version | cut -d' ' -f3-)"
	echo "Peers: nginx $(ver nginx -v | sed 's/.*nginx\///'); haproxy $(ver haproxy -v | awk '{print $3}'); caddy $(ver caddy version | awk '{print $1}'); wrk $(ver wrk -v | awk '{print $2}'); rsocket-go $(awk '/rsocket\/rsocket-go /{print $2}' "$HERE/suite/go.mod")"
} >"$TMP/meta.txt"
cat "$TMP/meta.txt" >&2

# ---- run
mkdir -p "$HERE/results"
SECTIONS=${SECTIONS:-http,tail,openloop,streams,rsocket,memory,balance,shipped,scale}
has_section() { [[ ",$SECTIONS," == *",$1,"* ]]; }
# sections 6 and 7 are shell harnesses run after the suite; the suite gets the rest
SUITE_SECTIONS=$(tr ',' '\n' <<<"$SECTIONS" | grep -vx 'shipped\|scale' | paste -sd, - || true)
args=(-tmp "$TMP" -bin "$TMP/bin" -suite "$HERE/suite" -out "$RESULTS" -png "$HERE/results" -meta "$TMP/meta.txt"
	-sections "$SUITE_SECTIONS" -pin="$([ "${PIN:-1}" = 1 ] && echo true || echo false)")
[ "$QUICK" = 1 ] && args+=(-quick)
[ -n "${REPS:-}" ] && args+=(-reps "$REPS")
[ -n "${NICE:-}" ] && args+=(-nice "$NICE")
if [ -n "$SUITE_SECTIONS" ]; then
	"$TMP/bin/suite" "${args[@]}" &
	SUITE_PID=$!
	wait "$SUITE_PID"
	SUITE_PID=
	log "report: $RESULTS (re-render from raw data: $TMP/bin/suite -report-only $TMP/trials.json -out ... -png ... -meta $TMP/meta.txt)"
else
	cp "$TMP/meta.txt" "$RESULTS"
fi

# ---- 6, 7: peers as shipped (pinned and unpinned) and core scaling, appended to the report
quick=()
[ "$QUICK" = 1 ] && quick=(-quick)
shipped_peers="gateway gateway-workers nginx nginx-auto haproxy haproxy-auto"
if has_section shipped; then
	for pin in 1 0; do
		log "section 6: bench/http/run.sh PIN=$pin, peers $shipped_peers"
		PIN=$pin PEERS=$shipped_peers REF=nginx,nginx-auto RESULTS="$TMP/shipped-pin$pin.md" GW_REF=${GW_REF:-} \
			"$HERE/http/run.sh" "${quick[@]}" >/dev/null
		{
			echo
			echo "## 6. HTTP with nginx and haproxy as shipped, $([ $pin = 1 ] && echo pinned || echo unpinned)"
			echo
			sed '1d; s/^### /#### /' "$TMP/shipped-pin$pin.md"
		} >>"$RESULTS"
	done
fi
if has_section scale; then
	log "section 7: bench/scale.sh"
	RESULTS="$TMP/scale.md" "$HERE/scale.sh" "${quick[@]}" >/dev/null
	{
		echo
		echo "## 7. Core scaling"
		echo
		sed '1d; s/^## /### /; s/^#### /##### /' "$TMP/scale.md"
	} >>"$RESULTS"
fi
log "report: $RESULTS"
