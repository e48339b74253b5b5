#!/usr/bin/env bash
# Where a warm 4 KiB download's time goes: one command, loopback only, bounded, stops by itself.
#
# Starts an nginx origin and linkgate (embedded store, THREADS workers) on free loopback ports,
# drives an unlimited and a counted link to a 4 KiB file with wrk, and for each:
#   - records the gateway with `perf record -g` and prints where its CPU time went (by symbol,
#     and split into kernel / linkgate+Pingora / allocator / other),
#   - counts its system calls per request with `strace -c -f` (a shorter run: strace slows it).
# Writes the report to target/load-results/profile-<time>.txt.
#
# Knobs: DURATION (s, default 8), CONNECTIONS (default 64), THREADS (default 1), SKIP_BUILD=1.
# Needs nginx, wrk, perf (linux-perf), strace, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
for tool in nginx wrk perf strace curl python3; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "missing $tool (apt-get install nginx-light wrk linux-perf strace curl)"; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --locked --bin linkgate
BIN=target/release/linkgate

WORK=$(mktemp -d /tmp/linkgate-profile.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
. benches/load/common.sh

mkdir -p "$WORK/www" && chmod 755 "$WORK" "$WORK/www"
head -c 4096 /dev/urandom > "$WORK/www/4k.bin" && chmod 644 "$WORK/www/4k.bin"
ORIGIN=$(free_port); GW=$(free_port); ADMIN=$(free_port)
USER_LINE=""; [ "$(id -u)" = 0 ] && USER_LINE="user root root;"
cat > "$WORK/origin.conf" <<CONF
$USER_LINE
worker_processes 1; daemon off; pid $WORK/origin.pid; error_log $WORK/origin.error.log error;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $WORK/b; proxy_temp_path $WORK/p; fastcgi_temp_path $WORK/f;
  uwsgi_temp_path $WORK/u; scgi_temp_path $WORK/s; keepalive_requests 1000000;
  server { listen 127.0.0.1:$ORIGIN; root $WORK/www; } }
CONF
"$NGINX" -p "$WORK" -c "$WORK/origin.conf" & PIDS+=($!)
cat > "$WORK/gw.toml" <<CONF
[server]
listen = "127.0.0.1:$GW"
public_url = "http://127.0.0.1:$GW"
threads = $THREADS
[admin]
listen = "127.0.0.1:$ADMIN"
token = "bench-admin-token"
[keys]
signing = "k1"
[keys.secrets]
k1 = "$(head -c 32 /dev/urandom | base64)"
[state]
backend = "embedded"
path = "$WORK/embedded.db"
[stores.docs]
kind = "http"
url = "http://127.0.0.1:$ORIGIN/"
CONF
RUST_LOG=${RUST_LOG:-info} "$BIN" serve --config "$WORK/gw.toml" 2>"$WORK/gw.log" & GPID=$!; PIDS+=($GPID)
wait_port "$ORIGIN"; wait_port "$GW"; wait_port "$ADMIN"
mklink() { curl -sf -H "Authorization: Bearer bench-admin-token" -H 'content-type: application/json' \
  -d "{\"store\":\"docs\",\"object\":\"4k.bin\",\"max_downloads\":$1}" "http://127.0.0.1:$ADMIN/v1/links" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])'; }

mkdir -p target/load-results
OUT="target/load-results/profile-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "linkgate profile: $(nproc) CPUs, wrk -t1 -c$CONNECTIONS -d${DURATION}s, THREADS=$THREADS"
  for kind in unlimited counted; do
    if [ "$kind" = unlimited ]; then url=$(mklink null); else url=$(mklink 1000000000000); fi
    wrk -t1 -c8 -d2s "$url" >/dev/null   # warm the link cache and the origin connections
    echo; echo "=== $kind link: perf record -g, ${DURATION} s"
    perf record -q -g -o "$WORK/perf.data" -p "$GPID" -- sleep "$DURATION" 2>/dev/null &
    rec=$!
    sleep 0.2
    wrk -t1 -c"$CONNECTIONS" -d"$((DURATION - 1))s" "$url" | awk '/Requests\/sec/ {print "  wrk: " $2 " req/s (under perf)"}'
    wait "$rec" || true
    perf report -i "$WORK/perf.data" --no-children --sort dso -q --stdio -g none > "$WORK/dso.txt" 2>/dev/null || true
    perf report -i "$WORK/perf.data" --no-children --sort symbol -q --stdio -g none > "$WORK/sym.txt" 2>/dev/null || true
    echo "  where the gateway's CPU time went, by object:"
    awk 'NF && $1 ~ /%$/ && n++ < 6 {printf "  %8s  %s\n", $1, $2}' "$WORK/dso.txt"
    echo "  by symbol (top 30; [k] kernel, [.] user space):"
    awk 'NF && $1 ~ /%$/ && n++ < 30 {p=$1; $1=""; sub(/^ +/, ""); sub(/ +-? +-? *$/, ""); printf "  %8s  %s\n", p, substr($0, 1, 150)}' "$WORK/sym.txt"
    echo; echo "=== $kind link: system calls per request (strace -c -f, 3 s)"
    strace -q -c -f -p "$GPID" -o "$WORK/strace.txt" &
    st=$!
    sleep 0.5
    reqs=$(wrk -t1 -c"$CONNECTIONS" -d3s "$url" | awk '/requests in/ {print $1}')
    kill -INT "$st" 2>/dev/null || true; wait "$st" 2>/dev/null || true
    python3 - "$WORK/strace.txt" "$reqs" <<'PY'
import sys
path, reqs = sys.argv[1], int(sys.argv[2] or 1)
rows = []
for line in open(path):
    parts = line.split()
    if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] not in ("total",):
        calls = int(parts[3]); rows.append((calls, parts[-1]))
total = sum(c for c, _ in rows)
print(f"  {reqs} requests, {total / reqs:.2f} system calls per request (all threads)")
for calls, name in sorted(rows, reverse=True)[:8]:
    print(f"  {calls / reqs:6.2f}  {name}")
PY
  done
} | tee "$OUT"
echo "written: $OUT"
