# Shared by the load scripts (sourced): loopback ports, the bench's secure_link URLs, and the bare
# Pingora passthrough (benches/passthrough.rs), the framework's floor.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# Waits for a loopback port to accept (up to a minute: a server under valgrind starts slowly).
wait_port() { for _ in $(seq 1 1200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened"; exit 1; }

# An nginx secure_link URL (md5 + expires, as the bench's nginx checks it): port, file, secret.
secure_link_url() {
  local exp=$(( $(date +%s) + 86400 )) uri="/p/$2"
  local md5; md5=$(printf '%s' "$exp$uri $3" | openssl md5 -binary | openssl base64 | tr '+/' '-_' | tr -d '=')
  echo "http://127.0.0.1:$1$uri?md5=$md5&expires=$exp"
}

# Builds the passthrough (release) and prints its path.
passthrough_bin() {
  cargo build --release --locked --bench passthrough --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "passthrough" and m.get("executable"):
        print(m["executable"])'
}
