#!/usr/bin/env bash
# Packs what bench/scale.sh and bench/http/run.sh need into one directory (and a .tar.gz) that runs on another
# x86-64 Linux machine with no Go toolchain, no compiler and no network:
#   bin/gateway, bin/rsbackend, bin/httpbackend, bin/benchreport   static Go binaries (CGO_ENABLED=0)
#   peers/{wrk,nginx,haproxy,curl}                                  this machine's binaries, each with the shared
#                                                                   libraries and the dynamic loader it uses
#                                                                   (ldd), started through wrappers in peers/bin
#   run-http.sh, post.lua, scale.sh                                 the harness
#
#   bench/pack.sh [OUT_DIR]        default /tmp/rsgate-bench-bundle; also writes OUT_DIR.tar.gz
#
# On the target:  tar xzf rsgate-bench-bundle.tar.gz && cd rsgate-bench-bundle && ./scale.sh -cores "1 2 4 8 16"
# It needs only bash, coreutils, awk, sed, taskset (util-linux) and ss (iproute2), which every distribution has.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${1:-/tmp/rsgate-bench-bundle}
export PATH=$PATH:/usr/sbin:/sbin
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/peers/bin" "$OUT/peers/lib"
export CGO_ENABLED=0
(cd "$ROOT" && go build -trimpath -o "$OUT/bin/gateway" ./cmd/gateway)
(cd "$HERE/http" && go build -trimpath -o "$OUT/bin/rsbackend" ./cmd/rsbackend &&
	go build -trimpath -o "$OUT/bin/httpbackend" ./cmd/httpbackend && go build -trimpath -o "$OUT/bin/benchreport" ./cmd/benchreport)
echo "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') $(go version | cut -d' ' -f3)" >"$OUT/bin/VERSION"
for b in gateway rsbackend httpbackend benchreport; do
	if file "$OUT/bin/$b" 2>/dev/null | grep -q 'dynamically linked'; then
		echo "pack.sh: $b is not static" >&2
		exit 1
	fi
done

# peers: the binary, every library ldd names, and the loader; a wrapper runs it through that loader
for p in wrk nginx haproxy curl; do
	src=$(command -v "$p" || true)
	if [ -z "$src" ]; then
		echo "pack.sh: $p not installed here, not bundled (apt-get install $p)" >&2
		continue
	fi
	cp "$src" "$OUT/peers/$p.bin"
	loader=
	while read -r lib; do
		[ -n "$lib" ] || continue
		cp -L "$lib" "$OUT/peers/lib/"
		case "$lib" in */ld-linux*) loader=$(basename "$lib") ;; esac
	done < <(ldd "$src" | awk '/=>/ { print $3 } !/=>/ && $1 ~ /^\// { print $1 }')
	cat >"$OUT/peers/bin/$p" <<WRAP
#!/usr/bin/env bash
d=\$(cd "\$(dirname "\${BASH_SOURCE[0]}")/.." && pwd)
exec "\$d/lib/$loader" --library-path "\$d/lib" "\$d/$p.bin" "\$@"
WRAP
	chmod +x "$OUT/peers/bin/$p"
done

cp "$HERE/http/run.sh" "$OUT/run-http.sh"
cp "$HERE/http/post.lua" "$OUT/post.lua"
cp "$HERE/scale.sh" "$OUT/scale.sh"
# inside the bundle: prebuilt binaries, bundled peers first on PATH, nothing to install
cat >"$OUT/env.sh" <<'ENV'
d=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BIN_DIR=$d/bin NO_INSTALL=1 PATH=$d/peers/bin:$PATH
ENV
sed -i '0,/^set -euo pipefail$/s##set -euo pipefail\nsource "$(dirname "${BASH_SOURCE[0]}")/env.sh"#' "$OUT/scale.sh" "$OUT/run-http.sh"
tar -C "$(dirname "$OUT")" -czf "$OUT.tar.gz" "$(basename "$OUT")"
echo "bundle: $OUT ($(du -sh "$OUT" | cut -f1)), $OUT.tar.gz"
