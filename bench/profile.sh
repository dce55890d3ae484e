#!/usr/bin/env bash
# Where the microseconds of a request go: the gateway (and nginx with worker_processes auto, in the same run)
# under a fixed wrk load, unpinned, at GOMAXPROCS / workers = 1 and 2 (or CORES="..."). For each: CPU µs per
# request, system calls per request by kind, context switches and CPU migrations per request (perf stat on
# the process), and for the gateway a CPU profile (pprof from its admin /debug/pprof/profile) grouped into
# budget lines: system calls, scheduler, GC and allocation, HTTP parsing/writing (fasthttp), ingress,
# pool, rsocket, other. For the gateway also: GC cycles, GC CPU share and heap allocations per request (its
# /metrics before and after), lock contention per request and its top sites (a mutex profile taken on demand,
# see cmd/gateway/adminprofile.go), and the same load with one backend connection (gateway-c1) beside the
# default `connections: auto`, to see whether one connection's writer and reader limit scaling. Last, a
# connection-rate run (wrk with "Connection: close": one TCP connection per request) for the gateway and nginx,
# which is where per-core SO_REUSEPORT listeners could pay. Writes bench/results/profile-<date>.md
# (ARCHITECTURE.md quotes it).
#
#   bench/profile.sh              CORES="1 2", 64 connections, 1 KiB JSON POST, 10 s per measurement
#   DURATION=5 bench/profile.sh   shorter
#
# Environment: CORES, CONNS (64), DURATION (10), WARMUP (3), PEERS ("gateway gateway-c1 nginx"), CONNRATE (1: the
# connection-rate run; 0 skips it), RESULTS, GW_REF (build
# from a clean copy of that commit), KEEP_TMP (1). Needs perf (linux-perf), wrk, nginx; installs them with
# apt-get when missing and run as root. Only processes it started are stopped.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CORES=${CORES:-"1 2"}
CONNS=${CONNS:-64}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
PEERS=${PEERS:-"gateway gateway-c1 nginx"}
CONNRATE=${CONNRATE:-1}
KEEP_TMP=${KEEP_TMP:-1}
RESULTS=${RESULTS:-$HERE/results/profile-$(date +%Y-%m-%d).md}
TMP=$(mktemp -d /tmp/rsgate-bench-profile.XXXXXX)
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
declare -A PID
cleanup() {
	local rc=$?
	for n in "${!PID[@]}"; do kill "${PID[$n]}" 2>/dev/null || true; done
	sleep 0.3
	for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null || true; done
	if [ "$KEEP_TMP" = 0 ]; then rm -rf "$TMP"; else log "raw data: $TMP"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export PATH=$PATH:/usr/sbin:/sbin

need=()
for t in wrk:wrk nginx:nginx perf:linux-perf; do command -v "${t%%:*}" >/dev/null || need+=("${t#*:}"); done
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	log "installing ${need[*]}"
	apt-get update -qq >/dev/null 2>&1 || true
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 || true
fi
for t in wrk perf; do command -v $t >/dev/null || { echo "profile.sh: $t is required" >&2; exit 1; }; done

SRC=$ROOT
TREE="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
if [ -n "${GW_REF:-}" ]; then
	SRC=$TMP/src
	mkdir -p "$SRC"
	git -C "$ROOT" archive "$GW_REF" | tar -x -C "$SRC"
	TREE="$(git -C "$ROOT" rev-parse --short "$GW_REF") (GW_REF=$GW_REF)"
fi
log "building into $TMP"
(cd "$SRC" && go build -o "$TMP/gateway" ./cmd/gateway)
(cd "$SRC/bench/http" && go build -o "$TMP/" ./cmd/rsbackend ./cmd/httpbackend)

port() { echo $((20000 + RANDOM % 30000)); }
wait_port() {
	for _ in $(seq 1 100); do ss -Htln "sport = :$1" | grep -q . && return 0; sleep 0.1; done
	echo "profile.sh: nothing listens on :$1" >&2
	return 1
}
head -c 1024 /dev/zero | tr '\0' 'x' | sed 's/^/{"msg":"/; s/.\{10\}$/"}/' >"$TMP/body.json"
export RSGATE_BODY=$TMP/body.json
CLK=$(getconf CLK_TCK)
ticks() { # utime+stime of pid and its children (nginx workers)
	local total=0 p s
	for p in $1 $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		s=$(cat /proc/"$p"/stat 2>/dev/null) || continue
		s=${s##*) }
		# shellcheck disable=SC2086
		set -- $s
		total=$((total + ${12} + ${13}))
	done
	echo "$total"
}
pids_of() { echo "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null) | tr ' ' ','; }

# One measurement: wrk against port for DURATION while perf stat counts on the given process (and children).
EVENTS="raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_readv,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,syscalls:sys_enter_sched_yield,syscalls:sys_enter_getsockopt,syscalls:sys_enter_setsockopt,syscalls:sys_enter_accept4,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_tgkill,syscalls:sys_enter_madvise,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_close,context-switches,cpu-migrations"
metric() { # file name -> value of an unlabelled metric line
	awk -v n="$2" '$1 == n { print $2; exit }' "$1"
}
measure() { # name pid port [wrk args...]
	local name=$1 pid=$2 port=$3
	shift 3
	wrk -t2 -c"$CONNS" -d"$WARMUP"s -s "$HERE/http/post.lua" "$@" "http://127.0.0.1:$port/api/echo" >/dev/null 2>&1 || true
	local t0 t1 gw=
	[ "${name#gateway}" = "$name" ] || gw=1
	[ -z "$gw" ] || curl -s -o "$TMP/$name.metrics0" "http://127.0.0.1:$ADMIN/metrics"
	t0=$(ticks "$pid")
	perf stat -x, -e "$EVENTS" -p "$(pids_of "$pid")" -o "$TMP/$name.perf" -- sleep "$DURATION" &
	local perfpid=$! curlpids=()
	if [ -n "$gw" ]; then
		curl -s -o "$TMP/$name.pprof" "http://127.0.0.1:$ADMIN/debug/pprof/profile?seconds=$((DURATION - 2))" &
		curlpids+=($!)
		curl -s -o "$TMP/$name.mutex" "http://127.0.0.1:$ADMIN/debug/pprof/mutex?seconds=$((DURATION - 2))" &
		curlpids+=($!)
	fi
	wrk -t2 -c"$CONNS" -d"$DURATION"s -s "$HERE/http/post.lua" "$@" "http://127.0.0.1:$port/api/echo" >"$TMP/$name.wrk" 2>&1
	wait "$perfpid" || true
	for p in "${curlpids[@]}"; do wait "$p" || true; done
	t1=$(ticks "$pid")
	[ -z "$gw" ] || curl -s -o "$TMP/$name.metrics1" "http://127.0.0.1:$ADMIN/metrics"
	echo $((t1 - t0)) >"$TMP/$name.ticks"
}

# run_peer peer cores [wrk args...]: start the system under test, measure it as "$peer-$cores" (with wrk
# arguments: "$peer-close-$cores"), stop it.
run_peer() {
	local peer=$1 n=$2 conns= proxy backend listen what
	shift 2
	local tag=$peer-$n
	[ $# -eq 0 ] || tag=$peer-close-$n
	case $peer in
	gateway | gateway-c1)
		[ "$peer" = gateway-c1 ] && conns=", connections: 1"
		RS=$(port) GW=$(port) ADMIN=$(port)
		env GOMAXPROCS="$n" "$TMP/rsbackend" -listen "127.0.0.1:$RS" >"$TMP/rsbackend.log" 2>&1 &
		PID[rsbackend]=$!
		wait_port "$RS"
		cat >"$TMP/gateway.yaml" <<EOF
listen: "127.0.0.1:$GW"
admin: "127.0.0.1:$ADMIN"
log: {level: warn}
backends:
  demo: {transport: tcp, addresses: ["127.0.0.1:$RS"]$conns}
routes:
  - {name: echo, method: POST, path: /api/echo, backend: demo, interaction: request-response, route: echo}
EOF
		env GOMAXPROCS="$n" "$TMP/gateway" -config "$TMP/gateway.yaml" >"$TMP/gateway.log" 2>&1 &
		PID[gateway]=$!
		proxy=gateway backend=rsbackend listen=$GW what=GOMAXPROCS
		;;
	nginx)
		HB=$(port) NG=$(port)
		env GOMAXPROCS="$n" "$TMP/httpbackend" -listen "127.0.0.1:$HB" >"$TMP/httpbackend.log" 2>&1 &
		PID[httpbackend]=$!
		wait_port "$HB"
		mkdir -p "$TMP/nginx/tmp"
		cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
worker_processes $n;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    keepalive_requests 10000000;
    upstream backend { server 127.0.0.1:$HB; keepalive 64; }
    server {
        listen 127.0.0.1:$NG backlog=4096;
        location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
EOF
		nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" &
		PID[nginx]=$!
		proxy=nginx backend=httpbackend listen=$NG what=worker_processes
		;;
	*)
		echo "profile.sh: unknown peer $peer" >&2
		exit 2
		;;
	esac
	wait_port "$listen"
	sleep 0.5
	log "$tag ($what=$n): measuring ${DURATION}s"
	measure "$tag" "${PID[$proxy]}" "$listen" "$@"
	kill "${PID[$proxy]}" "${PID[$backend]}" 2>/dev/null || true
	wait "${PID[$proxy]}" "${PID[$backend]}" 2>/dev/null || true
	unset "PID[$proxy]" "PID[$backend]"
	ROWS+=("$tag")
}

ROWS=()
for n in $CORES; do
	for peer in $PEERS; do run_peer "$peer" "$n"; done
done
CLOSE_ROWS=()
if [ "$CONNRATE" = 1 ]; then
	for n in $CORES; do
		for peer in gateway nginx; do
			run_peer "$peer" "$n" -H "Connection: close"
			CLOSE_ROWS+=("$peer-close-$n")
		done
	done
fi

# ---- report
reqs_of() { awk '/requests in/ {print $1}' "$TMP/$1.wrk"; }
count() { # file event -> count
	awk -F, -v e="$2" '$3 == e { gsub(/[^0-9]/, "", $1); print ($1 == "" ? 0 : $1) }' "$1" | head -1
}
{
	echo "# Per-request budget, unpinned — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Generated by \`bench/profile.sh\` (gateway at $TREE; $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load average at the end $(cut -d' ' -f1-3 /proc/loadavg))."
	echo "wrk -t2 -c$CONNS, ${DURATION}s after ${WARMUP}s warm-up, POST /api/echo with 1 KiB JSON; nothing pinned: wrk, the proxy and its backend share every CPU."
	echo "Counts are for the proxy process alone (nginx: master and workers), divided by the requests wrk completed."
	echo
	echo "| run | req/s | CPU µs/req | syscalls/req | read | write | writev | epoll_wait+pwait | futex | nanosleep | sched_yield | other | ctx switches/req | migrations/req |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for r in "${ROWS[@]}"; do
		f=$TMP/$r.perf
		req=$(reqs_of "$r")
		[ -n "$req" ] && [ "$req" -gt 0 ] || { echo "| $r | no wrk result |"; continue; }
		tk=$(cat "$TMP/$r.ticks")
		all=$(count "$f" raw_syscalls:sys_enter)
		rd=$(count "$f" syscalls:sys_enter_read); rd2=$(count "$f" syscalls:sys_enter_recvfrom)
		wr=$(count "$f" syscalls:sys_enter_write); wr2=$(count "$f" syscalls:sys_enter_sendto)
		wv=$(count "$f" syscalls:sys_enter_writev)
		ep=$(( $(count "$f" syscalls:sys_enter_epoll_wait) + $(count "$f" syscalls:sys_enter_epoll_pwait) ))
		fx=$(count "$f" syscalls:sys_enter_futex); ns=$(count "$f" syscalls:sys_enter_nanosleep); sy=$(count "$f" syscalls:sys_enter_sched_yield)
		cs=$(count "$f" context-switches); mg=$(count "$f" cpu-migrations)
		awk -v r="$r" -v req="$req" -v d="$DURATION" -v tk="$tk" -v clk="$CLK" -v all="$all" -v rd="$((rd + rd2))" -v wr="$((wr + wr2))" -v wv="$wv" -v ep="$ep" -v fx="$fx" -v ns="$ns" -v sy="$sy" -v cs="$cs" -v mg="$mg" 'BEGIN {
			o = all - rd - wr - wv - ep - fx - ns - sy
			printf "| %s | %.0f | %.1f | %.2f | %.2f | %.2f | %.2f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.4f |\n", r, req / d, tk / clk * 1e6 / req,
				all / req, rd / req, wr / req, wv / req, ep / req, fx / req, ns / req, sy / req, o / req, cs / req, mg / req }'
	done
	echo
	echo "## The gateway's GC, allocation and lock contention"
	echo
	echo "From its /metrics before and after each measurement (GC cycles, GC CPU, heap allocations) and a mutex profile over the measurement's last $((DURATION - 2)) s (taken on demand: cmd/gateway/adminprofile.go; delays are the profile's scaled totals)."
	echo
	echo "| run | GC cycles/s | GC CPU share | heap allocs/req | heap bytes/req | lock wait µs/req |"
	echo "|---|---:|---:|---:|---:|---:|"
	for r in "${ROWS[@]}"; do
		[ -s "$TMP/$r.metrics1" ] || continue
		req=$(reqs_of "$r")
		[ -n "$req" ] && [ "$req" -gt 0 ] || continue
		m0=$TMP/$r.metrics0 m1=$TMP/$r.metrics1
		delay=
		if [ -s "$TMP/$r.mutex" ]; then
			delay=$(go tool pprof -top -sample_index=delay "$TMP/gateway" "$TMP/$r.mutex" 2>/dev/null | sed -n 's/.* of \([0-9.]*\)\([a-zµ]*\) total.*/\1 \2/p' | head -1)
		fi
		awk -v r="$r" -v req="$req" -v d="$DURATION" -v tk="$(cat "$TMP/$r.ticks")" -v clk="$CLK" \
			-v gc0="$(metric "$m0" go_gc_duration_seconds_count)" -v gc1="$(metric "$m1" go_gc_duration_seconds_count)" \
			-v gcs0="$(metric "$m0" go_gc_cpu_seconds_total)" -v gcs1="$(metric "$m1" go_gc_cpu_seconds_total)" \
			-v ma0="$(metric "$m0" go_memstats_mallocs_total)" -v ma1="$(metric "$m1" go_memstats_mallocs_total)" \
			-v by0="$(metric "$m0" go_memstats_alloc_bytes_total)" -v by1="$(metric "$m1" go_memstats_alloc_bytes_total)" \
			-v delay="$delay" 'BEGIN {
			split(delay, dv, " "); u = dv[2]
			us = dv[1] * (u == "s" ? 1e6 : u == "ms" ? 1e3 : u == "ns" ? 1e-3 : 1)
			lw = (delay == "") ? "–" : sprintf("%.3f", us / (req * (d - 2) / d))
			cpu = tk / clk
			printf "| %s | %.2f | %.2f%% | %.3f | %.1f | %s |\n", r, (gc1 - gc0) / d, (cpu > 0 ? 100 * (gcs1 - gcs0) / cpu : 0),
				(ma1 - ma0) / req, (by1 - by0) / req, lw }'
	done
	for r in "${ROWS[@]}"; do
		[ -s "$TMP/$r.mutex" ] || continue
		echo
		echo "Top lock-contention sites, $r (pprof -top -sample_index=delay):"
		echo
		echo '```'
		go tool pprof -top -sample_index=delay -nodecount=6 "$TMP/gateway" "$TMP/$r.mutex" 2>/dev/null | sed -n '/flat%/,$p' | head -7
		echo '```'
	done
	if [ ${#CLOSE_ROWS[@]} -gt 0 ]; then
		echo
		echo "## Connection rate: one TCP connection per request"
		echo
		echo "wrk with \"Connection: close\" (otherwise as above): every request is an accept, a request and a close, where per-core SO_REUSEPORT listeners could pay. Requests/s is connections/s."
		echo
		echo "| run | connections/s | CPU µs per connection | syscalls per connection | ctx switches per connection |"
		echo "|---|---:|---:|---:|---:|"
		for r in "${CLOSE_ROWS[@]}"; do
			req=$(reqs_of "$r")
			[ -n "$req" ] && [ "$req" -gt 0 ] || { echo "| $r | no wrk result |"; continue; }
			awk -v r="$r" -v req="$req" -v d="$DURATION" -v tk="$(cat "$TMP/$r.ticks")" -v clk="$CLK" \
				-v all="$(count "$TMP/$r.perf" raw_syscalls:sys_enter)" -v cs="$(count "$TMP/$r.perf" context-switches)" 'BEGIN {
				printf "| %s | %.0f | %.1f | %.2f | %.3f |\n", r, req / d, tk / clk * 1e6 / req, all / req, cs / req }'
		done
	fi
	for r in "${ROWS[@]}"; do
		[ -s "$TMP/$r.pprof" ] || continue
		echo
		echo "## $r: where the gateway's CPU goes (pprof, share of samples)"
		echo
		go tool pprof -traces "$TMP/gateway" "$TMP/$r.pprof" 2>/dev/null | awk '
			function cat(stack) {
				if (stack ~ /gcBgMarkWorker|gcDrain|markroot|scanobject|bgsweep|sweepone|gcAssist/) return "GC (mark, sweep, assists)"
				if (stack ~ /mallocgc|newobject|makeslice|growslice/) return "allocation"
				if (stack ~ /acceptConn|netFD\)\.accept|accept4/) return "accepting connections (listener)"
				if (stack ~ /internal\/runtime\/syscall|syscall\.RawSyscall|syscall\.Syscall|rawio|netpoll|epollwait/) {
					if (stack ~ /netpoll|epollwait/) return "network poller (epoll)"
					return "system calls (read, write, writev)"
				}
				if (stack ~ /runtime\.(schedule|findRunnable|park_m|gopark|goready|ready|wakep|startm|stopm|notesleep|futex|mcall|gosched|goexit|runqsteal|stealWork)/) return "scheduler (park, wake, steal)"
				if (stack ~ /fasthttp/ && stack !~ /rsgate\/ingress/) return "HTTP parsing and writing (fasthttp)"
				if (stack ~ /rsgate\/rsocket/) return "rsocket (frames, write queue, reader)"
				if (stack ~ /rsgate\/pool/) return "pool (pick, done)"
				if (stack ~ /rsgate\/ingress|rsgate\/mapping|rsgate\/internal/) return "ingress, mapping, metadata"
				if (stack ~ /fasthttp/) return "HTTP parsing and writing (fasthttp)"
				return "other runtime"
			}
			/^-----------/ { if (st != "") { c[cat(st)] += v; tot += v }; st = ""; v = 0; next }
			/^ +[0-9.]+(ms|s|us|µs)/ && st == "" { x = $1; u = x; sub(/[0-9.]+/, "", u); sub(/[a-zµ]+$/, "", x); v = x * (u == "s" ? 1000 : u == "ms" ? 1 : 0.001); st = $2; next }
			{ st = st " " $1 }
			END {
				if (st != "") { c[cat(st)] += v; tot += v }
				for (k in c) if (c[k] > 0) printf "%.1f\t%s\n", 100 * c[k] / tot, k
			}' | sort -t"$(printf '\t')" -k1,1 -nr | awk -F'\t' 'BEGIN { print "| category | share |"; print "|---|---:|" } { printf "| %s | %s%% |\n", $2, $1 }'
	done
} >"$TMP/report.md"
mkdir -p "$(dirname "$RESULTS")"
cp "$TMP/report.md" "$RESULTS"
cat "$RESULTS"
log "report: $RESULTS"
