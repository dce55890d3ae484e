#!/usr/bin/env bash
# rsgate HTTP benchmark: the gateway against nginx (and haproxy, caddy) as keep-alive reverse proxies, measured
# in one run on this machine with wrk.
#
#   bench/http/run.sh            full run: 10 s trials, 3 repetitions, 64 and 256 connections
#   bench/http/run.sh -quick     3 s trials, 1 repetition (a smoke run, numbers only indicative)
#   bench/http/run.sh -cores N   everything under test limited to N CPUs (taskset; GOMAXPROCS, nginx workers and
#                                haproxy threads = N), wrk on the other CPUs (shared with the SUT when none are left)
#
# What runs (all on 127.0.0.1, high ports, configs and logs in a temp dir; nothing system-wide is touched):
#   gateway  : rsgate built from this tree, POST /api/echo -> request-response "echo" on an RSocket backend
#              (bench/http/cmd/rsbackend: the demo service of `gateway -demo`, in its own process)
#   nginx    : proxy_pass to the fasthttp backend (bench/http/cmd/httpbackend), upstream keepalive 64,
#              worker_processes = the SUT's CPU count
#   nginx-auto : the same, but "worker_processes auto" as Debian ships it (one worker per CPU it sees)
#   haproxy  : mode http, http-reuse always, same backend, nbthread = the SUT's CPU count
#   haproxy-auto : the same without nbthread, as shipped (haproxy picks one thread per CPU it is bound to)
#   caddy    : reverse_proxy, same backend
# Each trial: warm-up, then wrk -t THREADS -c CONNS -d DURATION --latency with a 1 KiB JSON POST (post.lua).
# Trials are interleaved (A B C D, B C D A, ... the start rotates every repetition) so slow drifts in background
# load hit every peer alike; the report gives medians, min/max and same-repetition ratios to nginx.
# CPU per request: utime+stime deltas from /proc/PID/stat (nginx: master + workers) over the measured trial.
#
# Environment overrides: DURATION (s), WARMUP (s), REPS, CONNS ("64 256"), THREADS, PEERS ("gateway nginx
# haproxy caddy"; add nginx-auto and haproxy-auto for the peers as shipped; add gateway-workers for the gateway
# with "workers: auto" (one process per CPU, SO_REUSEPORT; needs the gateway peer); add gateway-jwt for the same gateway
# on a route with JWT auth: POST /api/echo-jwt with an RS256 bearer token, REF=gateway gives its ratio), PIN (1: wrk on the first half of the
# CPUs, everything under test on the other half; 0: no pinning), CORES (same as -cores N), REF (reference peer(s)
# for ratios, "nginx" or e.g. "nginx,nginx-auto"), BIN_DIR (take gateway, rsbackend, httpbackend and benchreport
# from this directory instead of building them: for a machine without Go, see bench/README.md), GW_CONNECTIONS (gateway RSocket connections to the backend, 2), NGINX_KEEPALIVE (64), BODY_SIZE
# (1024), KEEP_TMP (1: keep the temp dir, the default; 0: delete it), RESULTS (report file path), NO_INSTALL=1,
# TRIALS_OUT (also copy the raw trials TSV there; bench/scale.sh uses it), GW_REF (a git ref, e.g. HEAD: build the gateway and the demo backend from that commit instead of the work tree),
# NICE (e.g. -10: run wrk and everything under test at that nice level, so that other work on a shared machine
# disturbs the trials less; it slows that other work down while the benchmark runs; default 0 = unchanged).
set -euo pipefail

QUICK=0
CORES=${CORES:-}
while [ $# -gt 0 ]; do
	a=$1
	shift
	case "$a" in
	-quick | --quick) QUICK=1 ;;
	-cores | --cores)
		CORES=${1:-}
		shift || true
		;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "run.sh: unknown argument $a (try -h)" >&2
		exit 2
		;;
	esac
done
if [ -n "$CORES" ] && ! [[ "$CORES" =~ ^[1-9][0-9]*$ ]]; then
	echo "run.sh: -cores wants a positive number of CPUs, got '$CORES'" >&2
	exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [ "$QUICK" = 1 ]; then
	DURATION=${DURATION:-3} WARMUP=${WARMUP:-1} REPS=${REPS:-1}
else
	DURATION=${DURATION:-10} WARMUP=${WARMUP:-3} REPS=${REPS:-3}
fi
CONNS=${CONNS:-"64 256"}
THREADS_SET=${THREADS:-}
THREADS=${THREADS:-2}
PEERS=${PEERS:-"gateway nginx haproxy caddy"}
PIN=${PIN:-1}
GW_CONNECTIONS=${GW_CONNECTIONS:-2}
NGINX_KEEPALIVE=${NGINX_KEEPALIVE:-64}
BODY_SIZE=${BODY_SIZE:-1024}
KEEP_TMP=${KEEP_TMP:-1}
DAY=$(date +%Y-%m-%d)
if [ "$QUICK" = 1 ]; then
	RESULTS=${RESULTS:-$ROOT/bench/results/http-$DAY-quick.md}
else
	RESULTS=${RESULTS:-$ROOT/bench/results/http-$DAY.md}
fi

TMP=$(mktemp -d /tmp/rsgate-bench-http.XXXXXX)
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
NOTES=() # caveats that go into the report
drop_peer() {
	local p=$1 why=$2 out=() x
	NOTES+=("$p: $why, not measured")
	log "$p: $why"
	for x in "${peers[@]}"; do [ "$x" = "$p" ] || out+=("$x"); done
	peers=("${out[@]}")
}

# ---------------------------------------------------------------- processes we start, and only those
declare -A PID     # name -> pid
declare -A PORT    # name -> port
cleanup() {
	local rc=$?
	for n in "${!PID[@]}"; do
		kill "${PID[$n]}" 2>/dev/null || true
	done
	sleep 0.5
	for n in "${!PID[@]}"; do
		kill -9 "${PID[$n]}" 2>/dev/null || true
	done
	if [ "$KEEP_TMP" = 0 ]; then rm -rf "$TMP"; else log "raw outputs, configs and logs: $TMP"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
need_install=()
for t in wrk:wrk nginx:nginx haproxy:haproxy caddy:caddy curl:curl taskset:util-linux; do
	cmd=${t%%:*} pkg=${t#*:}
	command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need_install+=("$pkg")
done
if [ ${#need_install[@]} -gt 0 ] && [ "${NO_INSTALL:-0}" != 1 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing ${need_install[*]}"
		apt-get update -qq >"$TMP/apt.log" 2>&1 || true
		for p in "${need_install[@]}"; do
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >>"$TMP/apt.log" 2>&1 ||
				log "could not install $p (see $TMP/apt.log)"
		done
	else
		log "missing ${need_install[*]} and cannot apt-get install them"
	fi
fi
export PATH=$PATH:/usr/sbin:/sbin
command -v wrk >/dev/null || { echo "run.sh: wrk is required" >&2; exit 1; }
have_peer() {
	case $1 in
	gateway | gateway-jwt | gateway-workers) return 0 ;;
	*) command -v "${1%-auto}" >/dev/null ;;
	esac
}
peers=()
for p in $PEERS; do
	if have_peer "$p"; then peers+=("$p"); else NOTES+=("$p: not installed, skipped"); log "$p not installed, skipped"; fi
done
# gateway-jwt: the same gateway process, POST /api/echo-jwt with "Authorization: Bearer <RS256 token>" (route
# auth, JWK Set file, verified-token cache on): the cost of JWT authentication against peer gateway.
if [[ " ${peers[*]} " == *" gateway-jwt "* ]] && [[ " ${peers[*]} " != *" gateway "* ]]; then
	drop_peer gateway-jwt "needs the gateway peer (PEERS=\"gateway gateway-jwt ...\")"
fi
# gateway-workers: the same gateway binary and configuration plus "workers: auto" (one process per SUT CPU,
# GOMAXPROCS=1 each, SO_REUSEPORT), in front of the gateway peer's RSocket backend.
if [[ " ${peers[*]} " == *" gateway-workers "* ]] && [[ " ${peers[*]} " != *" gateway "* ]]; then
	drop_peer gateway-workers "needs the gateway peer (PEERS=\"gateway gateway-workers ...\")"
fi
peer_path() { if [ "$1" = gateway-jwt ]; then echo /api/echo-jwt; else echo /api/echo; fi; }

# ---------------------------------------------------------------- CPU sets
NCPU=$(nproc)
if [ "$PIN" = 1 ] && [ "$NCPU" -ge 2 ]; then
	PINNED=1
	half=$((NCPU / 2))
	LOAD_CPUS="0-$((half - 1))"
	SUT_CPUS="$half-$((NCPU - 1))"
	SUT_N=$((NCPU - half))
	LOAD_PREFIX=(taskset -c "$LOAD_CPUS")
	SUT_PREFIX=(taskset -c "$SUT_CPUS")
	PINNING="wrk pinned to CPU $LOAD_CPUS; proxy and its backend pinned together to CPU $SUT_CPUS"
	SUT_LIST=$(seq -s, "$half" $((NCPU - 1)))
else
	PINNED=0
	SUT_N=$NCPU
	LOAD_PREFIX=()
	SUT_PREFIX=()
	PINNING="no pinning: wrk, proxies and backends share all $NCPU CPUs"
	SUT_LIST=$(seq -s, 0 $((NCPU - 1)))
fi
NICE=${NICE:-0}
if [ "$NICE" != 0 ]; then
	LOAD_PREFIX=(nice -n "$NICE" "${LOAD_PREFIX[@]}")
	SUT_PREFIX=(nice -n "$NICE" "${SUT_PREFIX[@]}")
	PINNING="$PINNING; wrk and the SUT run at nice $NICE"
fi
if [ -n "$CORES" ]; then
	[ "$CORES" -le "$NCPU" ] || { echo "run.sh: -cores $CORES but this machine has $NCPU CPUs" >&2; exit 2; }
	# the system under test on the last CORES CPUs, wrk on the others (or, when none are left, on all of them)
	SUT_N=$CORES
	SUT_CPUS="$((NCPU - CORES))-$((NCPU - 1))"
	SUT_LIST=$(seq -s, $((NCPU - CORES)) $((NCPU - 1)))
	SUT_PREFIX=(taskset -c "$SUT_CPUS")
	if [ "$CORES" -lt "$NCPU" ]; then
		PINNED=1
		LOAD_CPUS="0-$((NCPU - CORES - 1))"
		LOAD_PREFIX=(taskset -c "$LOAD_CPUS")
		PINNING="-cores $CORES: proxy and its backend limited to CPU $SUT_CPUS; wrk on CPU $LOAD_CPUS"
		# wrk: one thread per CPU it has (at least 2), unless THREADS was given
		[ -n "${THREADS_SET:-}" ] || THREADS=$((NCPU - CORES > 2 ? NCPU - CORES : 2))
	else
		PINNED=0
		LOAD_PREFIX=()
		PINNING="-cores $CORES: all $NCPU CPUs, shared by wrk, proxies and backends (no CPU left for wrk alone)"
	fi
	if [ "$NICE" != 0 ]; then
		LOAD_PREFIX=(nice -n "$NICE" "${LOAD_PREFIX[@]}")
		SUT_PREFIX=(nice -n "$NICE" "${SUT_PREFIX[@]}")
	fi
fi
CLK=$(getconf CLK_TCK)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------- builds
SRC=$ROOT
GW_MODE=separate
if [ -n "${BIN_DIR:-}" ]; then
	for b in gateway rsbackend httpbackend benchreport; do
		[ -x "$BIN_DIR/$b" ] || { echo "run.sh: BIN_DIR=$BIN_DIR has no executable $b (see bench/README.md, bench/pack.sh)" >&2; exit 1; }
		cp "$BIN_DIR/$b" "$TMP/$b"
	done
	TREE="prebuilt binaries from $BIN_DIR ($(cat "$BIN_DIR/VERSION" 2>/dev/null || echo 'version unknown'))"
else
	log "building into $TMP"
	(cd "$HERE" && go build -o "$TMP/httpbackend" ./cmd/httpbackend && go build -o "$TMP/benchreport" ./cmd/benchreport)
	TREE="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- . ':!bench' 2>/dev/null || echo ' + uncommitted changes (work tree)')"
	if [ -n "${GW_REF:-}" ]; then
		# a clean copy of the commit, with this harness copied in (it may be newer than the commit)
		SRC=$TMP/src
		mkdir -p "$SRC"
		git -C "$ROOT" archive "$GW_REF" | tar -x -C "$SRC"
		rm -rf "$SRC/bench/http"
		mkdir -p "$SRC/bench"
		cp -r "$HERE" "$SRC/bench/http"
		TREE="$(git -C "$ROOT" rev-parse --short "$GW_REF") (GW_REF=$GW_REF, clean copy)"
	fi
	if ! (cd "$SRC/bench/http" && go build -o "$TMP/rsbackend" ./cmd/rsbackend) >"$TMP/build-rsbackend.log" 2>&1; then
		GW_MODE=demo
		NOTES+=("bench/http/cmd/rsbackend did not build ($TMP/build-rsbackend.log): the gateway ran with -demo, its CPU includes the in-process demo backend")
	fi
	if [[ " ${peers[*]} " == *" gateway-jwt "* ]] &&
		! (cd "$HERE" && go build -o "$TMP/jwtgen" ./cmd/jwtgen) >"$TMP/build-jwtgen.log" 2>&1; then
		drop_peer gateway-jwt "bench/http/cmd/jwtgen did not build ($TMP/build-jwtgen.log)"
	fi
	if [[ " ${peers[*]} " == *" gateway "* ]]; then
		if ! (cd "$SRC" && go build -o "$TMP/gateway" ./cmd/gateway) >"$TMP/build-gateway.log" 2>&1; then
			log "gateway build failed:"
			sed 's/^/    /' "$TMP/build-gateway.log" | head -20 >&2
			drop_peer gateway "build failed at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
		fi
	fi
fi # BIN_DIR

# ---------------------------------------------------------------- ports
used_ports() { ss -Htan 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u; }
declare -A TAKEN
for p in $(used_ports); do TAKEN[$p]=1; done
pick_port() { # name: a random free high port into PORT[name]
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		if [ -z "${TAKEN[$p]:-}" ]; then
			TAKEN[$p]=1
			PORT[$1]=$p
			return
		fi
	done
}
for n in httpbackend rsbackend gateway gwadmin gateway-workers gwwadmin nginx nginx-auto haproxy haproxy-auto caddy; do pick_port $n; done

# ---------------------------------------------------------------- request body (1 KiB JSON)
make_body() {
	local size=$1 head tail pad n
	head='{"user":{"id":4242,"name":"Ada Lovelace","email":"ada@example.com","roles":["admin","dev"]},"items":[{"sku":"A-1","qty":2,"price":9.99},{"sku":"B-22","qty":1,"price":19.5}],"note":"'
	tail='"}'
	n=$((size - ${#head} - ${#tail}))
	pad=$(printf 'lorem ipsum dolor sit amet %.0s' $(seq 1 $((n / 27 + 1))))
	printf '%s%s%s' "$head" "${pad:0:$n}" "$tail"
}
make_body "$BODY_SIZE" >"$TMP/body.json"
export RSGATE_BODY=$TMP/body.json

# ---------------------------------------------------------------- configs
mkdir -p "$TMP/nginx/tmp" "$TMP/caddy"
cat >"$TMP/nginx/nginx.conf" <<EOF
# rsgate HTTP benchmark: nginx as a keep-alive reverse proxy to the fasthttp backend.
daemon off;
master_process on;
worker_processes $SUT_N;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events {
    worker_connections 8192;
}
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    # wrk keeps its connections for the whole trial; the default (1000 requests per connection) would make
    # nginx close and wrk reconnect every 1000 requests. The gateway has no such limit.
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    upstream backend {
        server 127.0.0.1:${PORT[httpbackend]};
        keepalive $NGINX_KEEPALIVE;
        keepalive_requests 10000000;
        keepalive_timeout 120s;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]} backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
# nginx-auto: the same, with worker_processes as Debian ships it
sed -e 's/^worker_processes .*/worker_processes auto;/' -e "s#$TMP/nginx/#$TMP/nginx-auto/#g" \
	-e "s#listen 127.0.0.1:${PORT[nginx]} #listen 127.0.0.1:${PORT[nginx-auto]} #" "$TMP/nginx/nginx.conf" >"$TMP/nginx-auto.conf"
mkdir -p "$TMP/nginx-auto/tmp"
mv "$TMP/nginx-auto.conf" "$TMP/nginx-auto/nginx.conf"
cat >"$TMP/haproxy.cfg" <<EOF
# rsgate HTTP benchmark: haproxy as a keep-alive reverse proxy to the fasthttp backend.
global
    nbthread $SUT_N
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always
frontend fe
    bind 127.0.0.1:${PORT[haproxy]}
    default_backend be
backend be
    server s1 127.0.0.1:${PORT[httpbackend]}
EOF
# haproxy-auto: the same without nbthread, as shipped (one thread per CPU haproxy is bound to)
sed -e '/^    nbthread /d' -e "s#bind 127.0.0.1:${PORT[haproxy]}\$#bind 127.0.0.1:${PORT[haproxy-auto]}#" "$TMP/haproxy.cfg" >"$TMP/haproxy-auto.cfg"
cat >"$TMP/caddy/Caddyfile" <<EOF
# rsgate HTTP benchmark: caddy as a keep-alive reverse proxy to the fasthttp backend.
{
    admin off
    auto_https off
}
http://127.0.0.1:${PORT[caddy]} {
    reverse_proxy 127.0.0.1:${PORT[httpbackend]} {
        transport http {
            keepalive 120s
            keepalive_idle_conns_per_host $NGINX_KEEPALIVE
        }
    }
}
EOF
if [ "$GW_MODE" = separate ]; then RS_ADDR=127.0.0.1:${PORT[rsbackend]}; else RS_ADDR=127.0.0.1:7878; fi
cat >"$TMP/gateway.yaml" <<EOF
# rsgate HTTP benchmark: the gateway in front of the demo RSocket service.
listen: "127.0.0.1:${PORT[gateway]}"
admin: "127.0.0.1:${PORT[gwadmin]}"
log:
  level: warn
  format: json
  access_log:
    enabled: false
backends:
  demo:
    transport: tcp
    addresses: ["$RS_ADDR"]
    connections: $GW_CONNECTIONS
    data_mime: application/json
    metadata_mime: message/x.rsocket.composite-metadata.v0
    max_inflight: 10000
routes:
  - name: echo
    method: POST
    path: /api/echo
    backend: demo
    interaction: request-response
    route: echo
    timeout: 5s
  - name: users
    method: GET
    path: /api/users/{id}
    backend: demo
    interaction: request-response
    route: users.{id}
EOF
JWT_AUTH=()
if [[ " ${peers[*]} " == *" gateway-jwt "* ]]; then
	if [ -x "$TMP/jwtgen" ] && "$TMP/jwtgen" -jwks "$TMP/jwks.json" -token "$TMP/jwt.token"; then
		JWT_AUTH=(-H "Authorization: Bearer $(cat "$TMP/jwt.token")")
		cat >>"$TMP/gateway.yaml" <<EOF
  - name: echo-jwt
    method: POST
    path: /api/echo-jwt
    backend: demo
    interaction: request-response
    route: echo
    timeout: 5s
    auth: {provider: users, scopes: [echo]}
auth:
  users:
    type: jwt
    jwks_file: $TMP/jwks.json
    issuer: https://bench.rsgate.invalid
    audiences: [bench]
EOF
	else
		drop_peer gateway-jwt "no jwtgen binary or it failed"
	fi
fi

# ---------------------------------------------------------------- start
start() { # name cmd... ; stdout/stderr to $TMP/name.log
	local name=$1
	shift
	"$@" >"$TMP/$name.log" 2>&1 &
	PID[$name]=$!
}
wait_port() { # name port
	local i
	for i in $(seq 1 100); do
		if ss -Htln "sport = :$2" | grep -q .; then return 0; fi
		if ! kill -0 "${PID[$1]}" 2>/dev/null; then break; fi
		sleep 0.1
	done
	log "$1 did not start listening on :$2; its log:"
	tail -20 "$TMP/$1.log" >&2 || true
	return 1
}
# backend process of each peer (for CPU accounting)
declare -A BACKEND

start httpbackend env GOMAXPROCS="$SUT_N" "${SUT_PREFIX[@]}" "$TMP/httpbackend" -listen "127.0.0.1:${PORT[httpbackend]}"
wait_port httpbackend "${PORT[httpbackend]}"
for p in "${peers[@]}"; do
	case $p in
	gateway)
		if [ "$GW_MODE" = separate ]; then
			start rsbackend env GOMAXPROCS="$SUT_N" "${SUT_PREFIX[@]}" "$TMP/rsbackend" -listen "$RS_ADDR"
			wait_port rsbackend "${PORT[rsbackend]}" || { drop_peer gateway "rsbackend did not start"; continue; }
			BACKEND[gateway]=rsbackend
			"$TMP/gateway" -check -config "$TMP/gateway.yaml" >"$TMP/gateway-check.log" 2>&1 ||
				{ drop_peer gateway "gateway -check rejected the config ($TMP/gateway-check.log)"; continue; }
			start gateway env GOMAXPROCS="$SUT_N" "${SUT_PREFIX[@]}" "$TMP/gateway" -config "$TMP/gateway.yaml"
		else
			BACKEND[gateway]=""
			start gateway env GOMAXPROCS="$SUT_N" "${SUT_PREFIX[@]}" "$TMP/gateway" -demo -config "$TMP/gateway.yaml"
		fi
		wait_port gateway "${PORT[gateway]}" || { drop_peer gateway "did not start"; continue; }
		;;
	nginx)
		start nginx "${SUT_PREFIX[@]}" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
		BACKEND[nginx]=httpbackend
		wait_port nginx "${PORT[nginx]}" || drop_peer nginx "did not start"
		;;
	nginx-auto)
		start nginx-auto "${SUT_PREFIX[@]}" nginx -p "$TMP/nginx-auto" -c "$TMP/nginx-auto/nginx.conf" -e "$TMP/nginx-auto/error.log"
		BACKEND[nginx-auto]=httpbackend
		wait_port nginx-auto "${PORT[nginx-auto]}" || drop_peer nginx-auto "did not start"
		;;
	haproxy-auto)
		start haproxy-auto "${SUT_PREFIX[@]}" haproxy -db -f "$TMP/haproxy-auto.cfg"
		BACKEND[haproxy-auto]=httpbackend
		wait_port haproxy-auto "${PORT[haproxy-auto]}" || drop_peer haproxy-auto "did not start"
		;;
	haproxy)
		start haproxy "${SUT_PREFIX[@]}" haproxy -db -f "$TMP/haproxy.cfg"
		BACKEND[haproxy]=httpbackend
		wait_port haproxy "${PORT[haproxy]}" || drop_peer haproxy "did not start"
		;;
	caddy)
		start caddy env HOME="$TMP/caddy" XDG_DATA_HOME="$TMP/caddy" XDG_CONFIG_HOME="$TMP/caddy" \
			GOMAXPROCS="$SUT_N" "${SUT_PREFIX[@]}" caddy run --config "$TMP/caddy/Caddyfile" --adapter caddyfile
		BACKEND[caddy]=httpbackend
		wait_port caddy "${PORT[caddy]}" || drop_peer caddy "did not start"
		;;
	gateway-workers)
		if [ "$GW_MODE" != separate ] || [ -z "${PID[gateway]:-}" ]; then
			drop_peer gateway-workers "needs the gateway peer with its backend in its own process"
			continue
		fi
		sed -e "s/^listen: .*/listen: \"127.0.0.1:${PORT[gateway-workers]}\"/" -e "s/^admin: .*/admin: \"127.0.0.1:${PORT[gwwadmin]}\"/" \
			"$TMP/gateway.yaml" >"$TMP/gateway-workers.yaml"
		printf 'workers: auto\n' >>"$TMP/gateway-workers.yaml"
		"$TMP/gateway" -check -config "$TMP/gateway-workers.yaml" >"$TMP/gateway-workers-check.log" 2>&1 ||
			{ drop_peer gateway-workers "gateway -check rejected the config ($TMP/gateway-workers-check.log)"; continue; }
		start gateway-workers env GOMAXPROCS="$SUT_N" "${SUT_PREFIX[@]}" "$TMP/gateway" -config "$TMP/gateway-workers.yaml"
		BACKEND[gateway-workers]=rsbackend
		wait_port gateway-workers "${PORT[gateway-workers]}" || drop_peer gateway-workers "did not start"
		;;
	gateway-jwt)
		PID[gateway-jwt]=${PID[gateway]:-}
		BACKEND[gateway-jwt]=${BACKEND[gateway]:-}
		PORT[gateway-jwt]=${PORT[gateway]}
		;;
	esac
done

# ---------------------------------------------------------------- sanity: every peer echoes the body
for p in "${peers[@]}"; do
	ok=0
	for i in $(seq 1 50); do # the gateway dials its backend in the background
		auth=()
		[ "$p" = gateway-jwt ] && auth=("${JWT_AUTH[@]}")
		if curl -sS --max-time 2 -o "$TMP/check-$p.out" -D "$TMP/check-$p.hdr" -H 'Content-Type: application/json' "${auth[@]}" \
			--data-binary @"$TMP/body.json" "http://127.0.0.1:${PORT[$p]}$(peer_path "$p")" 2>>"$TMP/check-$p.err" &&
			head -1 "$TMP/check-$p.hdr" | grep -q ' 200' && cmp -s "$TMP/body.json" "$TMP/check-$p.out"; then
			ok=1
			break
		fi
		sleep 0.2
	done
	if [ $ok = 1 ]; then
		log "$p: POST $(peer_path "$p") OK ($(grep -i '^content-type' "$TMP/check-$p.hdr" | tr -d '\r'))"
	else
		drop_peer "$p" "POST $(peer_path "$p") did not echo the body (see $TMP/check-$p.*)"
	fi
done
[ ${#peers[@]} -gt 0 ] || { echo "run.sh: nothing to measure" >&2; exit 1; }

# ---------------------------------------------------------------- measurement
ticks() { # pid: utime+stime of the process and its direct children (nginx workers), in clock ticks
	local pid=$1 total=0 p s kids
	kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
	for p in $pid $kids; do
		s=$(cat /proc/"$p"/stat 2>/dev/null) || continue
		s=${s##*) }
		# shellcheck disable=SC2086
		set -- $s # $1 = state (field 3), so utime (14) is $12 and stime (15) is $13
		total=$((total + ${12} + ${13}))
	done
	echo "$total"
}
sys_busy() { # "all SUT" busy ticks (user+nice+system+irq+softirq+steal): all CPUs, and the CPUs the SUT is pinned to
	awk -v sut=",$SUT_LIST," '
		/^cpu / { all = $2+$3+$4+$7+$8+$9 }
		/^cpu[0-9]/ { n = substr($1, 4); if (index(sut, "," n ",")) s += $2+$3+$4+$7+$8+$9 }
		END { print all, s }' /proc/stat
}
declare -A DIED
TSV=$TMP/trials.tsv
printf 'peer\tconns\trep\trps\trequests\tduration_s\tp50_us\tp90_us\tp99_us\tp999_us\tproxy_ticks\tbackend_ticks\twrk_cpu_s\tsys_busy_ticks\twall_s\terrors\tresp_bytes\tsut_busy_ticks\n' >"$TSV"
run_wrk() { # out conns duration port peer
	local auth=
	[ "${5:-}" = gateway-jwt ] && auth="Bearer $(cat "$TMP/jwt.token")"
	RSGATE_PATH=$(peer_path "${5:-}") RSGATE_AUTH=$auth "${LOAD_PREFIX[@]}" wrk -t"$THREADS" -c"$2" -d"$3"s --timeout 5s --latency -s "$HERE/post.lua" \
		"http://127.0.0.1:$4/api/echo" >"$1" 2>&1
}
summary() { # file -> "requests duration_s rps p50 p90 p99 p999 errors bytes/response" from post.lua's RSGATE_SUMMARY line
	awk '/^RSGATE_SUMMARY/ {
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		e = v["err_status"] + v["err_connect"] + v["err_read"] + v["err_write"] + v["err_timeout"]
		printf "%d %.3f %.1f %s %s %s %s %d %.0f\n", v["requests"], v["duration_us"] / 1e6, v["requests"] / (v["duration_us"] / 1e6),
			v["p50_us"], v["p90_us"], v["p99_us"], v["p999_us"], e, v["bytes"] / (v["requests"] > 0 ? v["requests"] : 1)
		exit
	}' "$1"
}

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
START_TS=$(date +%s)
ntrials=$((REPS * $(wc -w <<<"$CONNS") * ${#peers[@]}))
log "peers: ${peers[*]}; conns: $CONNS; $REPS repetition(s) x ${DURATION}s (+${WARMUP}s warm-up) = $ntrials trials, ~$((ntrials * (DURATION + WARMUP + 2) / 60 + 1)) min"
trial=0
for rep in $(seq 1 "$REPS"); do
	for c in $CONNS; do
		# rotate the order every repetition: A B C D, B C D A, ...
		n=${#peers[@]}
		for k in $(seq 0 $((n - 1))); do
			p=${peers[$(((k + rep - 1) % n))]}
			trial=$((trial + 1))
			base=$TMP/wrk-$p-c$c-r$rep
			if ! kill -0 "${PID[$p]}" 2>/dev/null || { [ -n "${BACKEND[$p]:-}" ] && ! kill -0 "${PID[${BACKEND[$p]}]}" 2>/dev/null; }; then
				if [ -z "${DIED[$p]:-}" ]; then
					DIED[$p]=1
					NOTES+=("$p (or its backend) exited during the run before trial $trial (c=$c rep=$rep); its later trials are missing (logs: $TMP/$p.log)")
					log "$p or its backend is no longer running; skipping its trials"
				fi
				continue
			fi
			log "trial $trial/$ntrials $p c=$c rep=$rep: warm-up ${WARMUP}s, measure ${DURATION}s"
			run_wrk "$base.warmup.txt" "$c" "$WARMUP" "${PORT[$p]}" "$p" || true
			sleep 0.5
			ppid=${PID[$p]}
			bname=${BACKEND[$p]:-}
			bpid=${bname:+${PID[$bname]}}
			t0p=$(ticks "$ppid")
			t0b=$([ -n "$bpid" ] && ticks "$bpid" || echo -1)
			read -r s0 u0 < <(sys_busy)
			w0=$(date +%s%N)
			TIMEFORMAT='%U %S'
			{ time run_wrk "$base.txt" "$c" "$DURATION" "${PORT[$p]}" "$p"; } 2>"$base.time" || log "wrk failed for $p (see $base.txt)"
			w1=$(date +%s%N)
			read -r s1 u1 < <(sys_busy)
			t1p=$(ticks "$ppid")
			t1b=$([ -n "$bpid" ] && ticks "$bpid" || echo -1)
			if ! grep -q RSGATE_SUMMARY "$base.txt"; then
				log "trial $trial/$ntrials $p c=$c rep=$rep: no wrk summary"
				continue
			fi
			read -r reqs dur_s rps p50 p90 p99 p999 errs rbytes < <(summary "$base.txt")
			wrk_cpu=$(awk '{print $1+$2}' "$base.time")
			if [ "$t0b" = -1 ]; then btk=-1; else btk=$((t1b - t0b)); fi
			wall=$(((w1 - w0) / 1000000))
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s.%03d\t%s\t%s\t%s\n' "$p" "$c" "$rep" "$rps" "$reqs" "$dur_s" \
				"$p50" "$p90" "$p99" "$p999" $((t1p - t0p)) "$btk" "$wrk_cpu" $((s1 - s0)) $((wall / 1000)) $((wall % 1000)) "$errs" "$rbytes" $((u1 - u0)) >>"$TSV"
			log "trial $trial/$ntrials $p c=$c rep=$rep: $rps req/s, p99 ${p99}us, errors $errs"
		done
	done
done
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)
END_TS=$(date +%s)

# ---------------------------------------------------------------- report
ver() { "$@" 2>&1 | head -1 | tr -d '\r' || true; }
{
	echo "# rsgate HTTP benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')$([ "$QUICK" = 1 ] && echo ' (quick)')"
	echo
	echo "Generated by \`bench/http/run.sh$([ "$QUICK" = 1 ] && echo ' -quick')\` (see bench/README.md for how to read it)."
	echo
	echo "- Gateway built from: $TREE; $(go version 2>/dev/null | cut -d' ' -f3- || echo 'Go toolchain not installed here (prebuilt binaries)')"
	echo "- Machine: $NCPU CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
	echo "- Load average at start / end: $LOADAVG_START / $LOADAVG_END (other work on the machine shows up here and in the *other load* column)"
	echo "- Pinning: $PINNING. Gateway GOMAXPROCS=$SUT_N, nginx worker_processes $SUT_N, haproxy nbthread $SUT_N, caddy and backends GOMAXPROCS=$SUT_N; nginx-auto and haproxy-auto (when measured) run as shipped: worker_processes auto, no nbthread.$([[ " ${peers[*]} " == *" gateway-workers "* ]] && echo " gateway-workers: the gateway with \`workers: auto\` ($SUT_N worker process(es), GOMAXPROCS=1 each), CPU of the supervisor and its workers.")"
	echo "- Load: wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), $THREADS threads, connections $CONNS, ${DURATION}s per trial after a ${WARMUP}s warm-up on the same connections count, $REPS repetition(s), order rotated per repetition; POST /api/echo with a ${BODY_SIZE}-byte JSON body (Content-Type: application/json), keep-alive."
	echo "- gateway: $([ -x "$TMP/gateway" ] && ver "$TMP/gateway" -version || echo 'not built'); RSocket TCP, $GW_CONNECTIONS connections to $([ "$GW_MODE" = separate ] && echo 'the demo service in its own process (bench/http/cmd/rsbackend)' || echo 'the in-process demo service (-demo): its CPU includes the backend')."
	echo "- nginx: $(ver nginx -v | sed 's/.*nginx\///'), upstream keepalive $NGINX_KEEPALIVE, proxy_http_version 1.1, access_log off, keepalive_requests unlimited (10M). haproxy: $(ver haproxy -v | awk '{print $3}'), http-reuse always. caddy: $(ver caddy version | awk '{print $1}'), reverse_proxy, keepalive_idle_conns_per_host $NGINX_KEEPALIVE. All three proxy to bench/http/cmd/httpbackend (fasthttp)."
	echo "- CPU per request: utime+stime delta of /proc/PID/stat over the measured trial / requests (CLK_TCK=$CLK). *proxy* is the gateway, nginx (master+workers), haproxy or caddy; *backend* is the RSocket demo service for the gateway and the fasthttp backend for the others. *other load* = cores busy with anything else (other processes, kernel softirq not charged to a process) during the trial — a noise indicator."
	echo "- Wall time: $(((END_TS - START_TS) / 60)) min $(((END_TS - START_TS) % 60)) s. Raw wrk outputs: $TMP"
	for n in "${NOTES[@]}"; do echo "- Note: $n"; done
	echo
	"$TMP/benchreport" -in "$TSV" -clk "$CLK" -unpinned="$([ "$PINNED" = 1 ] && echo false || echo true)" -peers "gateway,gateway-workers,gateway-jwt,nginx,nginx-auto,haproxy,haproxy-auto,caddy" -ref "${REF:-nginx}" -cores "${CORES:-0}"
} >"$TMP/report.md"
mkdir -p "$(dirname "$RESULTS")"
cp "$TMP/report.md" "$RESULTS"
[ -z "${TRIALS_OUT:-}" ] || cp "$TSV" "$TRIALS_OUT"
cat "$TMP/report.md"
log "report written to $RESULTS"
