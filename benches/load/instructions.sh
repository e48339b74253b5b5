#!/usr/bin/env bash
# Instructions per warm request: the per-request figure that a busy machine cannot move.
#
# Wall-clock figures (req/s, p99) shift with whatever else runs; the number of user-space
# instructions a server executes for one more request does not. This script runs, one at a time
# and each under valgrind's callgrind (which counts every instruction the process executes, in
# all its threads):
#   - nginx with secure_link (one process, master_process off) in front of an nginx origin,
#   - the bare Pingora passthrough (benches/passthrough.rs), the framework's floor,
#   - linkgate on the embedded store: an unlimited and a counted link,
#   - linkgate on Redis: an unlimited and a counted link,
# warms each with WARM requests, zeroes the counters, sends REQUESTS keep-alive requests for a
# 4 KiB file over CONNECTIONS connections with h2load (HTTP/1.1), dumps the counters and divides.
# The origin and Redis run outside valgrind, so only the server under test is counted.
# Loopback only, bounded (valgrind makes each request ~50x slower; defaults take ~2 minutes),
# stops by itself. Writes target/load-results/instructions-<time>.{md,json}.
#
# Knobs: REQUESTS (default 2000), WARM (default 300), CONNECTIONS (default 4), SKIP_BUILD=1,
# KEEP=DIR (keep each callgrind dump there, for callgrind_annotate).
# Needs valgrind, nginx, h2load (nghttp2-client), redis-server, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS=${REQUESTS:-2000}
WARM=${WARM:-300}
CONNECTIONS=${CONNECTIONS:-4}
for tool in valgrind callgrind_control nginx h2load redis-server curl python3 openssl; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "missing $tool (apt-get install valgrind nginx-light nghttp2-client redis-server curl openssl)"; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --locked --bin linkgate
fi
BIN=target/release/linkgate
. benches/load/common.sh
PASS=$(passthrough_bin)
[ -x "$PASS" ] || { echo "the passthrough bench binary did not build"; exit 1; }

WORK=$(mktemp -d /tmp/linkgate-instructions.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done; sleep 0.5; for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$WORK/www" && chmod 755 "$WORK" "$WORK/www"
head -c 4096 /dev/urandom > "$WORK/www/4k.bin" && chmod 644 "$WORK/www/4k.bin"
ORIGIN=$(free_port); REDIS=$(free_port)
USER_LINE=""; [ "$(id -u)" = 0 ] && USER_LINE="user root root;"
SECRET="bench-secret"
nginx_conf() { # name, body, extra top-level lines
  cat > "$WORK/$1.conf" <<CONF
$USER_LINE
$3
worker_processes 1;
daemon off;
pid $WORK/$1.pid;
error_log $WORK/$1.error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/$1.body; proxy_temp_path $WORK/$1.proxy; fastcgi_temp_path $WORK/$1.fcgi;
  uwsgi_temp_path $WORK/$1.uwsgi; scgi_temp_path $WORK/$1.scgi;
  default_type application/octet-stream;
  sendfile on; tcp_nopush on; keepalive_requests 1000000;
  $2
}
CONF
}
nginx_conf origin "server { listen 127.0.0.1:$ORIGIN; root $WORK/www; }" ""
"$NGINX" -p "$WORK" -c "$WORK/origin.conf" & PIDS+=($!)
redis-server --bind 127.0.0.1 --port "$REDIS" --save "" --appendonly no --dir "$WORK" >/dev/null & PIDS+=($!)
wait_port "$ORIGIN"; wait_port "$REDIS"

KEY=$(head -c 32 /dev/urandom | base64)
gw_conf() { # name port admin state-lines
  cat > "$WORK/$1.toml" <<CONF
[server]
listen = "127.0.0.1:$2"
public_url = "http://127.0.0.1:$2"
threads = 1
[admin]
listen = "127.0.0.1:$3"
token = "bench-admin-token"
[keys]
signing = "k1"
[keys.secrets]
k1 = "$KEY"
[state]
$4
[stores.docs]
kind = "http"
url = "http://127.0.0.1:$ORIGIN/"
CONF
}
mklink() { # admin_port max -> url
  curl -sf -H "Authorization: Bearer bench-admin-token" -H 'content-type: application/json' \
    -d "{\"store\":\"docs\",\"object\":\"4k.bin\",\"max_downloads\":$2}" "http://127.0.0.1:$1/v1/links" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])'
}

declare -A PER_REQ
# Runs the server command under callgrind, then counts the instructions of REQUESTS requests to
# each of the URLs the setup function prints (label=url lines).
measure() { # name port setup-function -- command...
  local name=$1 port=$2 setup=$3; shift 4
  local out="$WORK/$name.callgrind"
  valgrind --tool=callgrind --callgrind-out-file="$out.%p" --dump-instr=no --compress-strings=no \
    "$@" >"$WORK/$name.valgrind.log" 2>&1 & local pid=$!
  PIDS+=($pid)
  wait_port "$port"
  local lines; lines=$($setup)
  local label url before after
  while IFS='=' read -r label url; do
    [ -n "$label" ] || continue
    h2load --h1 -n "$WARM" -c "$CONNECTIONS" "$url" >/dev/null
    callgrind_control -z "$pid" >/dev/null
    h2load --h1 -n "$REQUESTS" -c "$CONNECTIONS" "$url" > "$WORK/$label.h2load"
    grep -q "succeeded, 0 errored" "$WORK/$label.h2load" || grep -q "$REQUESTS succeeded" "$WORK/$label.h2load" || { cat "$WORK/$label.h2load"; echo "$label: requests failed"; exit 1; }
    rm -f "$out.$pid".*
    callgrind_control -d "$pid" >/dev/null
    local dump; dump=$(ls -t "$out.$pid".* 2>/dev/null | head -1)
    for _ in $(seq 1 100); do [ -s "$dump" ] && grep -q '^totals:\|^summary:' "$dump" && break; sleep 0.1; dump=$(ls -t "$out.$pid".* 2>/dev/null | head -1); done
    local total; total=$(awk '/^(totals|summary):/ {print $2; exit}' "$dump")
    PER_REQ[$label]=$(python3 -c "print(round($total / $REQUESTS))")
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$dump" "$KEEP/$label.callgrind"; fi
    echo "$label: ${PER_REQ[$label]} instructions per request" >&2
  done <<< "$lines"
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

SECURE=$(free_port)
nginx_conf secure "upstream origin { server 127.0.0.1:$ORIGIN; keepalive 256; }
  server { listen 127.0.0.1:$SECURE;
    location /p/ {
      secure_link \$arg_md5,\$arg_expires;
      secure_link_md5 \"\$secure_link_expires\$uri $SECRET\";
      if (\$secure_link = \"\") { return 403; }
      if (\$secure_link = \"0\") { return 410; }
      rewrite ^/p/(.*)\$ /\$1 break;
      proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection \"\";
      proxy_buffering off;
      add_header Cache-Control \"private, no-store\"; add_header X-Content-Type-Options nosniff;
    } }" "master_process off;"
setup_secure() { echo "secure_link=$(secure_link_url "$SECURE" 4k.bin "$SECRET")"; }
measure secure_link "$SECURE" setup_secure -- "$NGINX" -p "$WORK" -c "$WORK/secure.conf"

PT=$(free_port)
setup_pass() { echo "passthrough=http://127.0.0.1:$PT/4k.bin"; }
measure passthrough "$PT" setup_pass -- "$PASS" --listen "127.0.0.1:$PT" --origin "127.0.0.1:$ORIGIN" --threads 1

GW_E=$(free_port); ADMIN_E=$(free_port)
gw_conf embedded "$GW_E" "$ADMIN_E" "backend = \"embedded\"
path = \"$WORK/embedded.db\""
setup_embedded() { wait_port "$ADMIN_E"; echo "linkgate_embedded_unlimited=$(mklink "$ADMIN_E" null)"; echo "linkgate_embedded_counted=$(mklink "$ADMIN_E" 1000000000000)"; }
RUST_LOG=warn measure linkgate_embedded "$GW_E" setup_embedded -- "$BIN" serve --config "$WORK/embedded.toml"

GW_R=$(free_port); ADMIN_R=$(free_port)
gw_conf redis "$GW_R" "$ADMIN_R" "backend = \"redis\"
redis_url = \"redis://127.0.0.1:$REDIS\""
setup_redis() { wait_port "$ADMIN_R"; echo "linkgate_redis_unlimited=$(mklink "$ADMIN_R" null)"; echo "linkgate_redis_counted=$(mklink "$ADMIN_R" 1000000000000)"; }
RUST_LOG=warn measure linkgate_redis "$GW_R" setup_redis -- "$BIN" serve --config "$WORK/redis.toml"

mkdir -p target/load-results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
python3 - "$stamp" "$REQUESTS" "$CONNECTIONS" \
  secure_link="${PER_REQ[secure_link]}" passthrough="${PER_REQ[passthrough]}" \
  linkgate_embedded_unlimited="${PER_REQ[linkgate_embedded_unlimited]}" linkgate_embedded_counted="${PER_REQ[linkgate_embedded_counted]}" \
  linkgate_redis_unlimited="${PER_REQ[linkgate_redis_unlimited]}" linkgate_redis_counted="${PER_REQ[linkgate_redis_counted]}" <<'PY'
import json, sys
stamp, requests, connections = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per = {k: int(v) for k, v in (a.split("=", 1) for a in sys.argv[4:])}
base = per["secure_link"]
rows = ["| server | instructions per request | vs nginx secure_link | vs Pingora passthrough |", "| --- | ---: | ---: | ---: |"]
for k, v in per.items():
    rows.append(f"| {k} | {v:,} | {v / base:.2f}x | {v / per['passthrough']:.2f}x |")
md = "\n".join([f"Instructions per warm 4 KiB request {stamp} (callgrind, {requests} requests over {connections} keep-alive connections, one worker thread)", "", *rows, ""])
print(md)
open(f"target/load-results/instructions-{stamp}.md", "w").write(md)
open(f"target/load-results/instructions-{stamp}.json", "w").write(json.dumps({"when": stamp, "requests": requests, "connections": connections, "instructions_per_request": per}, indent=2))
print(f"written: target/load-results/instructions-{stamp}.md and .json")
PY
