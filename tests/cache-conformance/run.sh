#!/bin/bash
# Runs the public cache-tests suite through Vigil as a forward proxy (make cache-conformance):
# installs the suite and undici from npm, starts the suite's origin server and a Vigil with
# an empty ruleset on loopback, runs every test with fetch routed through Vigil, and prints
# the pass counts beside Squid's published results. Not part of `make test`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${VIGIL_BIN_DIR:-$root/build/bin}"
cd "$here"
[ -d node_modules/http-cache-tests ] && [ -d node_modules/undici ] ||
  npm install --no-audit --no-fund --no-save --silent http-cache-tests@0.4.5 undici@7.30.2
work="$(mktemp -d /tmp/vigil-cache-tests.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_WORKDIR:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The suite's origin on a port of the kernel's choosing (no race for a "free" port).
(cd node_modules/http-cache-tests && npm_config_protocol=http npm_config_port=0 \
   npm_config_pidfile="$work/server.pid" exec node server/server.mjs >"$work/server.log" 2>&1) &
pids+=($!)

"$bin/vigil-ca" init --dir "$work/ca" >/dev/null
"$bin/vigil-rules" --db "$work/rules.db" init >/dev/null
"$bin/vigil" --listen 127.0.0.1:0 --ca-dir "$work/ca" --rules "$work/rules.db" --ready-file "$work/ready.json" \
  --set proxy.allow_private_destinations=true --set 'admin.listen=""' ${VIGIL_CACHE_ARGS:-} >"$work/vigil.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/ready.json" ] && break; sleep 0.1; done
proxy_port="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listen"].rsplit(":",1)[1])' "$work/ready.json")"
for _ in $(seq 100); do grep -q Listening "$work/server.log" 2>/dev/null && break; sleep 0.1; done
origin_port="$(sed -n 's|^Listening on .*:\([0-9]*\)/$|\1|p' "$work/server.log")"
[ -n "$origin_port" ] && [ -n "$proxy_port" ] || { echo "servers did not start"; cat "$work/server.log" "$work/vigil.log"; exit 1; }

mkdir -p results
out="results/vigil.json"
VIGIL_PROXY="http://127.0.0.1:$proxy_port" BASE="http://127.0.0.1:$origin_port" \
  NODE_OPTIONS="--import $here/proxy.mjs" node run.mjs >"$out"
[ -n "${TEST_ID:-}" ] && { cat "$out"; exit 0; }
echo "results: $here/$out"
if [ "${1:-}" = "--check" ]; then
  # The bar (make test): at least this many passes and at most this many required failures.
  MIN_PASS=205 MAX_FAIL=1 node score.mjs "$out" node_modules/http-cache-tests/results/squid.json || {
    node -e 'const r = require(process.argv[1]); for (const [k, v] of Object.entries(r)) if (v !== true) console.log(k, JSON.stringify(v))' "$here/$out"
    tail -50 "$work/vigil.log"
    exit 1
  }
else
  node score.mjs "$out" node_modules/http-cache-tests/results/squid.json
fi
