#!/usr/bin/env bash
# linkgate load benchmark: one command, loopback only, bounded in time, stops by itself.
#
# In one run it starts, on free loopback ports:
#   - the origin alone (nginx serving the files),
#   - nginx with secure_link (md5 + expires) proxying to that origin with keep-alive,
#   - linkgate on the embedded store, and linkgate on Redis, in front of the same origin,
# and drives each with the same wrk load for a 4 KiB file on an unlimited and on a counted link,
# measures 1 GiB throughput with curl, and holds 1,000 slow readers of a large file to read the
# gateways' memory. The embedded gateway also serves the same 1 GiB file from a dir store (the
# gateway reads the file itself): "linkgate_dir", throughput and slow readers only. Each RSS comes
# with the process's RSS just before the readers started; at the end the embedded gateway is
# restarted and the slow readers repeated on the fresh process (HTTP store, then dir store), to
# show their cost without what the earlier runs left behind. It prints a
# table of ratios (to nginx secure_link and to the origin alone) and writes it as Markdown and
# JSON under target/load-results/.
#
# The 4 KiB runs and the 1 GiB downloads go round all targets ROUNDS times (default 3), interleaved,
# and each target keeps its best round: on a shared host a burst of someone else's work then costs
# one round of one target, not a whole figure. The JSON keeps every round.
#
# Knobs (environment): DURATION (s per wrk run, default 10), CONNECTIONS (default 64), ROUNDS,
# THREADS (workers for nginx and linkgate, default 1), WRK_THREADS (default 1),
# SLOW_READERS (default 1000), SLOW_SECONDS (default 15), SKIP_BUILD=1, BIG=0 (only the 4 KiB runs:
# no 1 GiB throughput or slow readers; their figures read 0).
set -euo pipefail
START_TS=$(date +%s); ts() { echo "[$(( $(date +%s) - START_TS ))s] $*" >&2; }
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
WRK_THREADS=${WRK_THREADS:-1}
SLOW_READERS=${SLOW_READERS:-1000}
SLOW_SECONDS=${SLOW_SECONDS:-15}
ROUNDS=${ROUNDS:-3}
BIG=${BIG:-1}

for tool in nginx wrk redis-server redis-cli curl python3 openssl; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "missing $tool (apt-get install nginx-light wrk redis-server curl openssl)"; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --locked --bin linkgate
BIN=target/release/linkgate

WORK=$(mktemp -d /tmp/linkgate-load.XXXXXX)
PIDS=()
# SIGINT: a fast stop for all of them (on SIGTERM the passthrough, as any Pingora server, waits
# out its whole grace period: five minutes).
cleanup() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=0; for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break; sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true; rm -rf "$WORK"
}
trap cleanup EXIT
. benches/load/common.sh
PASS=$(passthrough_bin)
[ -x "$PASS" ] || { echo "the passthrough bench binary did not build"; exit 1; }
# As many open files as allowed (never lower than the shell's: 1,000 slow readers need several
# thousand descriptors, and a spliced download holds up to four more).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Files.
mkdir -p "$WORK/www" && chmod 755 "$WORK" "$WORK/www"
head -c 4096 /dev/urandom > "$WORK/www/4k.bin"
ts "files written"
head -c $((1024*1024*1024)) /dev/urandom > "$WORK/www/1g.bin"
chmod 644 "$WORK/www/"*

ORIGIN=$(free_port); SECURE=$(free_port); PT=$(free_port); GW_E=$(free_port); ADMIN_E=$(free_port); GW_R=$(free_port); ADMIN_R=$(free_port); REDIS=$(free_port)
USER_LINE=""; [ "$(id -u)" = 0 ] && USER_LINE="user root root;"
SECRET="bench-secret"

nginx_conf() { # name, body
  cat > "$WORK/$1.conf" <<CONF
$USER_LINE
worker_processes $THREADS;
daemon off;
pid $WORK/$1.pid;
error_log $WORK/$1.error.log error;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $WORK/$1.body; proxy_temp_path $WORK/$1.proxy; fastcgi_temp_path $WORK/$1.fcgi;
  uwsgi_temp_path $WORK/$1.uwsgi; scgi_temp_path $WORK/$1.scgi;
  default_type application/octet-stream;
  sendfile on; tcp_nopush on; keepalive_requests 1000000;
  $2
}
CONF
  "$NGINX" -p "$WORK" -c "$WORK/$1.conf" & PIDS+=($!)
}
nginx_conf origin "server { listen 127.0.0.1:$ORIGIN; root $WORK/www; }"
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
    } }"
"$PASS" --listen "127.0.0.1:$PT" --origin "127.0.0.1:$ORIGIN" --threads "$THREADS" 2>"$WORK/passthrough.log" & PIDS+=($!)
echo $! > "$WORK/passthrough.pid"
redis-server --bind 127.0.0.1 --port "$REDIS" --save "" --appendonly no --dir "$WORK" >/dev/null & PIDS+=($!)

KEY=$(head -c 32 /dev/urandom | base64)
gw_conf() { # name port admin state
  cat > "$WORK/$1.toml" <<CONF
[server]
listen = "127.0.0.1:$2"
public_url = "http://127.0.0.1:$2"
threads = $THREADS
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
[stores.files]
kind = "dir"
root = "$WORK/www"
CONF
  RUST_LOG=${RUST_LOG:-info} "$BIN" serve --config "$WORK/$1.toml" 2>"$WORK/$1.log" & PIDS+=($!)
  echo $! > "$WORK/$1.pid"
}
gw_conf embedded "$GW_E" "$ADMIN_E" "backend = \"embedded\"
path = \"$WORK/embedded.db\""
gw_conf redis "$GW_R" "$ADMIN_R" "backend = \"redis\"
redis_url = \"redis://127.0.0.1:$REDIS\""
for p in $ORIGIN $SECURE $PT $GW_E $ADMIN_E $GW_R $ADMIN_R $REDIS; do wait_port "$p"; done
ts "servers up"

mklink() { # admin_port object max [store] -> url
  curl -sf -H "Authorization: Bearer bench-admin-token" -H 'content-type: application/json' \
    -d "{\"store\":\"${4:-docs}\",\"object\":\"$2\",\"max_downloads\":$3}" "http://127.0.0.1:$1/v1/links" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])'
}
secure_url() { secure_link_url "$SECURE" "$1" "$SECRET"; }
declare -A URL4K URL4KC URL1G
URL4K[origin]="http://127.0.0.1:$ORIGIN/4k.bin";  URL4KC[origin]="${URL4K[origin]}"; URL1G[origin]="http://127.0.0.1:$ORIGIN/1g.bin"
URL4K[secure_link]=$(secure_url 4k.bin);          URL4KC[secure_link]="${URL4K[secure_link]}"; URL1G[secure_link]=$(secure_url 1g.bin)
URL4K[passthrough]="http://127.0.0.1:$PT/4k.bin"; URL4KC[passthrough]="${URL4K[passthrough]}"; URL1G[passthrough]="http://127.0.0.1:$PT/1g.bin"
URL4K[linkgate_embedded]=$(mklink "$ADMIN_E" 4k.bin null)
URL4KC[linkgate_embedded]=$(mklink "$ADMIN_E" 4k.bin 1000000000000)
URL1G[linkgate_embedded]=$(mklink "$ADMIN_E" 1g.bin null)
URL4K[linkgate_redis]=$(mklink "$ADMIN_R" 4k.bin null)
URL4KC[linkgate_redis]=$(mklink "$ADMIN_R" 4k.bin 1000000000000)
URL1G[linkgate_redis]=$(mklink "$ADMIN_R" 1g.bin null)
URL1G[linkgate_dir]=$(mklink "$ADMIN_E" 1g.bin null files)
code=$(curl -s -o /dev/null -r 0-0 -w '%{http_code}' "${URL1G[linkgate_dir]}"); [ "$code" = 206 ] || { echo "linkgate_dir answered $code"; exit 1; }
for t in origin secure_link passthrough linkgate_embedded linkgate_redis; do
  for u in "${URL4K[$t]}" "${URL4KC[$t]}" "${URL1G[$t]}"; do
    code=$(curl -s -o /dev/null -r 0-0 -w '%{http_code}' "$u"); [ "$code" = 206 ] || [ "$code" = 200 ] || { echo "$t: $u answered $code"; exit 1; }
  done
done

# "req/s p99-ms" of one wrk run.
load() {
  wrk --latency -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$1" | python3 -c '
import re, sys
text = sys.stdin.read()
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
m = re.search(r"^\s+99%\s+([0-9.]+)(us|ms|s)\s*$", text, re.M)
scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
print(rps, round(float(m.group(1)) * scale[m.group(2)], 3) if m else 0)'
}
calls() { redis-cli -p "$REDIS" INFO commandstats | awk -F'[:=,]' -v c="cmdstat_$1" '$1==c {print $3}'; }
throughput() { # one download, MB/s
  curl -s -o /dev/null -w '%{speed_download}' "$1" | python3 -c 'import sys; print(float(sys.stdin.read()) / 1e6)'
}
better() { python3 -c "import sys; print(1 if float(sys.argv[1]) > float(sys.argv[2]) else 0)" "$1" "$2"; }
rss_of() { # pids... -> MiB (sum)
  local total=0 kb
  for p in "$@"; do kb=$(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0); total=$((total + ${kb:-0})); done
  echo $((total / 1024))
}
pids_of() { case $1 in
  origin) pgrep -f "nginx.*$WORK/origin.conf" | tr '\n' ' ';;
  secure_link) pgrep -f "nginx.*$WORK/secure.conf" | tr '\n' ' ';;
  linkgate_embedded|linkgate_dir) cat "$WORK/embedded.pid";;
  linkgate_redis) cat "$WORK/redis.pid";;
  passthrough) cat "$WORK/passthrough.pid";;
  esac; }
port_of() { case $1 in origin) echo "$ORIGIN";; secure_link) echo "$SECURE";; linkgate_embedded|linkgate_dir) echo "$GW_E";; linkgate_redis) echo "$GW_R";; passthrough) echo "$PT";; esac; }

declare -A R_UNL R_CNT P_UNL P_CNT T_1G RSS_SLOW RSS_BEFORE SLOW_OK
slow_readers() { # target: peak RSS under slow readers of the 1 GiB file
  if [ "$BIG" = 0 ]; then RSS_BEFORE[$1]=0; RSS_SLOW[$1]=0; SLOW_OK[$1]=0; : > "$WORK/rss-$1.tsv"; return; fi
  slow_rss "$1" "$1" "${URL1G[$1]}"
}
slow_rss() { # label target url: the target's RSS before, and its peak under the slow readers
  local label=$1 t=$2 path slow peak r
  path="/${3#http://127.0.0.1:*/}"
  # shellcheck disable=SC2046
  RSS_BEFORE[$label]=$(rss_of $(pids_of "$t"))
  python3 benches/load/slow_readers.py 127.0.0.1 "$(port_of "$t")" "$path" "$SLOW_READERS" "$SLOW_SECONDS" 65536 > "$WORK/slow.out" &
  slow=$!
  peak=0
  : > "$WORK/rss-$label.tsv"
  for i in $(seq 1 $((SLOW_SECONDS * 4))); do
    # shellcheck disable=SC2046
    r=$(rss_of $(pids_of "$t")); [ "$r" -gt "$peak" ] && peak=$r
    echo "$(python3 -c "print($i / 4)") $r" >> "$WORK/rss-$label.tsv"
    sleep 0.25
    kill -0 "$slow" 2>/dev/null || break
  done
  wait "$slow" || true
  RSS_SLOW[$label]=$peak
  SLOW_OK[$label]=$(awk '/connected/ {print $2}' "$WORK/slow.out")
}
restart_embedded() { # a fresh embedded gateway (SIGINT: Pingora's fast shutdown), same file and links
  local pid; pid=$(cat "$WORK/embedded.pid")
  kill -INT "$pid"; for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  gw_conf embedded "$GW_E" "$ADMIN_E" "backend = \"embedded\"
path = \"$WORK/embedded.db\""
  wait_port "$GW_E"; sleep 1
}
TARGETS=(origin secure_link passthrough linkgate_embedded linkgate_redis)
for t in "${TARGETS[@]}"; do
  wrk -t1 -c8 -d2s "${URL4K[$t]}" >/dev/null   # warm caches and connections
  R_UNL[$t]=0; R_CNT[$t]=0; P_UNL[$t]=0; P_CNT[$t]=0; T_1G[$t]=0
done
T_1G[linkgate_dir]=0
# ROUNDS interleaved rounds (see the top); each target keeps its best, with that round's p99.
EVALS=0; COUNTED=0; OTHERS=0; UNLIMITED=0
for round in $(seq 1 "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do
    ts "== round $round: $t"
    if [ "$t" = linkgate_redis ]; then redis-cli -p "$REDIS" CONFIG RESETSTAT >/dev/null; fi
    read -r rps p99 < <(load "${URL4K[$t]}")
    echo "$round $t unlimited $rps $p99" >> "$WORK/rounds.tsv"
    if [ "$(better "$rps" "${R_UNL[$t]}")" = 1 ]; then R_UNL[$t]=$rps; P_UNL[$t]=$p99; fi
    if [ "$t" = linkgate_redis ]; then
      # Requests that need Redis would show as GET (link load) or EVALSHA (counting); the audit
      # flush adds one EVALSHA per link per quarter second, whatever the load.
      g=$(calls get); e=$(calls evalsha)
      OTHERS=$((OTHERS + ${g:-0} + ${e:-0})); UNLIMITED=$(python3 -c "print(int($UNLIMITED + $rps * $DURATION))")
      redis-cli -p "$REDIS" CONFIG RESETSTAT >/dev/null
    fi
    read -r rps p99 < <(load "${URL4KC[$t]}")
    echo "$round $t counted $rps $p99" >> "$WORK/rounds.tsv"
    if [ "$(better "$rps" "${R_CNT[$t]}")" = 1 ]; then R_CNT[$t]=$rps; P_CNT[$t]=$p99; fi
    if [ "$t" = linkgate_redis ]; then
      e=$(calls evalsha)
      EVALS=$((EVALS + ${e:-0})); COUNTED=$(python3 -c "print(int($COUNTED + $rps * $DURATION))")
    fi
  done
  if [ "$BIG" != 0 ]; then
    for t in "${TARGETS[@]}" linkgate_dir; do
      mb=$(throughput "${URL1G[$t]}")
      echo "$round $t 1g $mb 0" >> "$WORK/rounds.tsv"
      if [ "$(better "$mb" "${T_1G[$t]}")" = 1 ]; then T_1G[$t]=$mb; fi
    done
  fi
done
EVAL_PER_REQ=$(python3 -c "print(round($EVALS / max($COUNTED, 1), 3))")
OTHER_PER_REQ_UNL=$(python3 -c "print(round($OTHERS / max($UNLIMITED, 1), 4))")
for t in "${TARGETS[@]}"; do
  ts "== slow readers: $t"
  slow_readers "$t"
done
ts "== slow readers: linkgate_dir"
slow_readers linkgate_dir
# The runs above leave caches, pool threads and allocator pages behind; a fresh gateway shows what
# 1,000 slow downloads cost by themselves.
ts "== fresh gateway"
if [ "$BIG" = 0 ]; then
  for l in fresh_http fresh_dir; do RSS_BEFORE[$l]=0; RSS_SLOW[$l]=0; SLOW_OK[$l]=0; : > "$WORK/rss-$l.tsv"; done
else
  restart_embedded; slow_rss fresh_http linkgate_embedded "${URL1G[linkgate_embedded]}"
  restart_embedded; slow_rss fresh_dir linkgate_dir "${URL1G[linkgate_dir]}"
fi

mkdir -p target/load-results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
python3 - "$stamp" "$WORK" <<PY
import json, os, sys
stamp, work = sys.argv[1], sys.argv[2]
targets = ["origin", "secure_link", "passthrough", "linkgate_embedded", "linkgate_redis"]
unl = {"origin": ${R_UNL[origin]}, "secure_link": ${R_UNL[secure_link]}, "passthrough": ${R_UNL[passthrough]}, "linkgate_embedded": ${R_UNL[linkgate_embedded]}, "linkgate_redis": ${R_UNL[linkgate_redis]}}
cnt = {"origin": ${R_CNT[origin]}, "secure_link": ${R_CNT[secure_link]}, "passthrough": ${R_CNT[passthrough]}, "linkgate_embedded": ${R_CNT[linkgate_embedded]}, "linkgate_redis": ${R_CNT[linkgate_redis]}}
thr = {"origin": ${T_1G[origin]}, "secure_link": ${T_1G[secure_link]}, "passthrough": ${T_1G[passthrough]}, "linkgate_embedded": ${T_1G[linkgate_embedded]}, "linkgate_redis": ${T_1G[linkgate_redis]}, "linkgate_dir": ${T_1G[linkgate_dir]}}
rss = {"origin": ${RSS_SLOW[origin]}, "secure_link": ${RSS_SLOW[secure_link]}, "passthrough": ${RSS_SLOW[passthrough]}, "linkgate_embedded": ${RSS_SLOW[linkgate_embedded]}, "linkgate_redis": ${RSS_SLOW[linkgate_redis]}, "linkgate_dir": ${RSS_SLOW[linkgate_dir]}}
before = {"origin": ${RSS_BEFORE[origin]}, "secure_link": ${RSS_BEFORE[secure_link]}, "passthrough": ${RSS_BEFORE[passthrough]}, "linkgate_embedded": ${RSS_BEFORE[linkgate_embedded]}, "linkgate_redis": ${RSS_BEFORE[linkgate_redis]}, "linkgate_dir": ${RSS_BEFORE[linkgate_dir]}}
p99 = {"unlimited": {t: float(v) for t, v in zip(targets, "${P_UNL[origin]} ${P_UNL[secure_link]} ${P_UNL[passthrough]} ${P_UNL[linkgate_embedded]} ${P_UNL[linkgate_redis]}".split())},
       "counted": {t: float(v) for t, v in zip(targets, "${P_CNT[origin]} ${P_CNT[secure_link]} ${P_CNT[passthrough]} ${P_CNT[linkgate_embedded]} ${P_CNT[linkgate_redis]}".split())}}
def series(label):
    path = os.path.join(work, f"rss-{label}.tsv")
    if not os.path.exists(path):
        return []
    return [[float(a), int(b)] for a, b in (line.split() for line in open(path) if line.strip())]
rss_series = {label: series(label) for label in targets + ["linkgate_dir", "fresh_http", "fresh_dir"]}
rounds_all = [{"round": int(r), "target": t, "kind": k, "value": float(v), "p99_ms": float(p)}
              for r, t, k, v, p in (line.split() for line in open(os.path.join(work, "rounds.tsv")) if line.strip())]
fresh = {"http_store": ${RSS_SLOW[fresh_http]}, "dir_store": ${RSS_SLOW[fresh_dir]}}
fresh_before = {"http_store": ${RSS_BEFORE[fresh_http]}, "dir_store": ${RSS_BEFORE[fresh_dir]}}
slow = {"origin": ${SLOW_OK[origin]:-0}, "secure_link": ${SLOW_OK[secure_link]:-0}, "passthrough": ${SLOW_OK[passthrough]:-0}, "linkgate_embedded": ${SLOW_OK[linkgate_embedded]:-0}, "linkgate_redis": ${SLOW_OK[linkgate_redis]:-0}, "linkgate_dir": ${SLOW_OK[linkgate_dir]:-0}, "fresh_http": ${SLOW_OK[fresh_http]:-0}, "fresh_dir": ${SLOW_OK[fresh_dir]:-0}}
result = {
  "when": stamp, "duration_s": $DURATION, "rounds": $ROUNDS, "rounds_all": rounds_all, "slow_readers": $SLOW_READERS, "connections": $CONNECTIONS, "threads": $THREADS,
  "cpus": int(open("/proc/cpuinfo").read().count("processor\t:")),
  "rps_4k_unlimited": unl, "rps_4k_counted": cnt, "p99_ms_4k": p99, "rss_mib_over_time": rss_series, "mb_per_s_1g": thr, "rss_mib_slow_readers": rss, "rss_mib_before_slow_readers": before, "rss_mib_slow_readers_fresh_gateway": fresh, "rss_mib_fresh_gateway_before": fresh_before, "slow_readers_connected": slow,
  "redis_evalsha_per_counted_request": $EVAL_PER_REQ or 0,
  "redis_commands_per_unlimited_request": $OTHER_PER_REQ_UNL or 0,
}
def ratio(a, b):
    return f"{a / b:.2f}x" if b else "-"
rows = ["| target | 4 KiB unlimited req/s | vs secure_link | vs origin | p99 ms | 4 KiB counted req/s | vs secure_link | p99 ms | 1 GiB MB/s | vs origin | RSS MiB, {} slow readers (before) |".format($SLOW_READERS),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for t in targets:
    rows.append(f"| {t} | {unl[t]:.0f} | {ratio(unl[t], unl['secure_link'])} | {ratio(unl[t], unl['origin'])} | {p99['unlimited'][t]} | {cnt[t]:.0f} | {ratio(cnt[t], cnt['secure_link'])} | {p99['counted'][t]} | {thr[t]:.0f} | {ratio(thr[t], thr['origin'])} | {rss[t]} ({before[t]}; {slow[t]} connected) |")
rows.append(f"| linkgate_dir (embedded, dir store) | - | - | - | - | - | - | - | {thr['linkgate_dir']:.0f} | {ratio(thr['linkgate_dir'], thr['origin'])} | {rss['linkgate_dir']} ({before['linkgate_dir']}; {slow['linkgate_dir']} connected) |")
rows.append(f"| linkgate, fresh embedded gateway, HTTP store | - | - | - | - | - | - | - | - | - | {fresh['http_store']} ({fresh_before['http_store']}; {slow['fresh_http']} connected) |")
rows.append(f"| linkgate, fresh embedded gateway, dir store | - | - | - | - | - | - | - | - | - | {fresh['dir_store']} ({fresh_before['dir_store']}; {slow['fresh_dir']} connected) |")
md = "\n".join([f"Load benchmark {stamp}: {result['cpus']} CPUs, wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, THREADS=$THREADS, best of $ROUNDS interleaved rounds", "", *rows, "",
  f"Redis round trips on the request path: EVALSHA per counted request {result['redis_evalsha_per_counted_request']}, GET+EVALSHA per warm unlimited request {result['redis_commands_per_unlimited_request']}", ""])
print(md)
open(f"target/load-results/load-{stamp}.md", "w").write(md)
open(f"target/load-results/load-{stamp}.json", "w").write(json.dumps(result, indent=2))
print(f"written: target/load-results/load-{stamp}.md and .json")
PY
python3 benches/load/chart.py "target/load-results/load-$stamp.json" "target/load-results/load-$stamp.svg"
