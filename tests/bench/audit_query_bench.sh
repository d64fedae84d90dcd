#!/usr/bin/env bash
# Times vigil-audit over a 1,000,000-record log (made by vigil_audit_bench --fill). Not in CI.
set -euo pipefail
BIN=${1:-build/bin}
DB=$(mktemp -d)/audit.db
trap 'rm -rf "$(dirname "$DB")"' EXIT
"$BIN/vigil_audit_bench" --fill "$DB" 1000000
t() { local s=$(date +%s.%N); "$@" > /dev/null; echo "$(echo "$(date +%s.%N) - $s" | bc) s  ${*:2}"; }
t "$BIN/vigil-audit" --db "$DB" query --host site42.example --since 24h --limit 100
t "$BIN/vigil-audit" --db "$DB" query --user user7 --action block --limit 100
t "$BIN/vigil-audit" --db "$DB" query --user user7 --since 24h --limit 100
t "$BIN/vigil-audit" --db "$DB" query --rule block-malware --since 2h --limit 1000
t "$BIN/vigil-audit" --db "$DB" stats --by host --since 24h --top 10
t "$BIN/vigil-audit" --db "$DB" stats --by host --since 24h --top 10 --exact
t "$BIN/vigil-audit" --db "$DB" stats --by action --since 24h
t "$BIN/vigil-audit" --db "$DB" verify
