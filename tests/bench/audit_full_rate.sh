#!/usr/bin/env bash
# The gateway at its full request rate loses no audit record: drives the real vigil (bumping
# HTTPS, audit log on) with vigil_loadgen against an nginx origin until it is saturated, stops
# it with SIGTERM, and compares the requests the load generator saw answered with the rows
# in the audit log. Not part of the tests; run by `make bench` (needs nginx).
#   tests/bench/audit_full_rate.sh [BIN_DIR] [SECONDS]
set -euo pipefail
BIN=$(cd "${1:-build/bin}" && pwd)
SECS=${2:-15}
W=$(mktemp -d)
NGINX_PID=""
VIGIL_PID=""
cleanup() {
    [ -n "$VIGIL_PID" ] && kill "$VIGIL_PID" 2>/dev/null || true
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A test CA and an RSA-2048 origin certificate for bench.test, as in the peers' measurements.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/ca.key" -out "$W/ca.pem" \
    -days 2 -subj "/CN=Bench CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout "$W/origin.key" -out "$W/origin.csr" -subj "/CN=bench.test" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:bench.test\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > "$W/origin.ext"
openssl x509 -req -in "$W/origin.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial -out "$W/origin.pem" \
    -days 2 -extfile "$W/origin.ext" 2>/dev/null
mkdir -p "$W/www" && head -c 1024 /dev/urandom > "$W/www/1k"

ORIGIN_PORT=$(free_port)
cat > "$W/nginx.conf" <<EOF
user root;
worker_processes 1;
daemon off;
pid $W/nginx.pid;
error_log $W/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$ORIGIN_PORT ssl;
        ssl_certificate $W/origin.pem;
        ssl_certificate_key $W/origin.key;
        keepalive_requests 1000000;
        root $W/www;
    }
}
EOF
nginx -c "$W/nginx.conf" -p "$W" &
NGINX_PID=$!

"$BIN/vigil-ca" init --dir "$W/vca" >/dev/null
echo "127.0.0.1 bench.test" > "$W/hosts"
"$BIN/vigil" --listen 127.0.0.1:0 --ca-dir "$W/vca" --threads 2 --hosts-file "$W/hosts" --extra-ca "$W/ca.pem" \
    --audit "$W/audit.db" --ready-file "$W/ready.json" --log-level warn \
    --set proxy.allow_private_destinations=true --set "proxy.allowed_connect_ports=[$ORIGIN_PORT]" &
VIGIL_PID=$!
for _ in $(seq 100); do [ -s "$W/ready.json" ] && break; sleep 0.1; done
PORT=$(python3 -c "import json; print(json.load(open('$W/ready.json'))['listen'].rsplit(':', 1)[1])")

total=0
for mode in keepalive newconn; do
    out=$("$BIN/vigil_loadgen" --url "https://bench.test:$ORIGIN_PORT/1k" --proxy "127.0.0.1:$PORT" \
        --cafile "$W/vca/root.pem" --mode $mode --connections 32 --seconds "$SECS" || true)
    echo "$out" | head -n -1
    n=$(echo "$out" | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
    total=$((total + n))
done
kill -TERM "$VIGIL_PID"
wait "$VIGIL_PID" || true
VIGIL_PID=""
rows=$("$BIN/vigil-audit" --db "$W/audit.db" stats --by host --exact | awk '$1 == "bench.test" {print $2}')
echo "answered with 200: $total; audit rows for bench.test: ${rows:-0} (rows also count refused or failed requests)"
if [ "${rows:-0}" -ge "$total" ]; then echo "PASS: no record lost"; else echo "FAIL: $((total - rows)) records missing"; exit 1; fi
