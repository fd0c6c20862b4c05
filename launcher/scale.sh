#!/usr/bin/env bash
# How far one machine goes (issue: watercooler, "Performance"): starts
# `watercooler -x N --sauron --auto` for each N given, and reports the time
# until every node is up, the summed RSS of watercooler's children (nodes
# and Sauron) while the load runs, and the verdict after settling.
#
#   cargo build --release --workspace --bins
#   launcher/scale.sh 40 100 200
#
# Environment: BIN (default target/release), DURATION (s of load, default
# 60), SETTLE (s, default 60), INTERVAL_MS (mean ms between one node's auto
# moves; default: none, watercooler's fleet-wide `--auto-rate`; builds from
# before hash power need it), SEED (default 1), OUT (directory for logs and
# reports, default a fresh temporary one); WATERCOOLER_NODE_NICE is passed
# on to watercooler. Every other option is watercooler's default (block
# interval 1 s, equal hash shares).
#
# Every run is bounded (DURATION + SETTLE + 300 s), and watercooler stops
# every process it started; the script ends only watercooler, by PID.
set -euo pipefail

BIN=${BIN:-target/release}
DURATION=${DURATION:-60}
SETTLE=${SETTLE:-60}
SEED=${SEED:-1}
OUT=${OUT:-$(mktemp -d /tmp/watercooler-scale.XXXXXX)}
[ -x "$BIN/watercooler" ] || {
    echo "no $BIN/watercooler: run cargo build --release --workspace --bins" >&2
    exit 2
}
[ $# -gt 0 ] || set -- 40 100 200

summed_mib() {
    # RSS and PSS (shared pages split between their users) summed over
    # every child of $1, in MiB: "RSS/PSS".
    local rss pss
    rss=$(ps -o rss= --ppid "$1" | awk '{ kb += $1 } END { printf "%d", kb / 1024 }')
    pss=$(for child in $(ps -o pid= --ppid "$1"); do
        awk '/^Pss:/ { print $2 }' "/proc/$child/smaps_rollup" 2>/dev/null || true
    done | awk '{ kb += $1 } END { printf "%d", kb / 1024 }')
    echo "$rss/$pss"
}

printf '%-6s %-10s %-16s %-10s %s\n' nodes "up (s)" "RSS/PSS (MiB)" converged verdict
for n in "$@"; do
    rate=()
    [ -z "${INTERVAL_MS:-}" ] || rate=(--auto-interval-ms "$INTERVAL_MS")
    log="$OUT/run-$n.log"
    report="$OUT/report-$n.json"
    "$BIN/watercooler" -x "$n" --sauron --auto "${rate[@]}" \
        --duration "$DURATION" --settle "$SETTLE" --seed "$SEED" \
        --data-dir "$OUT/data-$n" --report "$report" --plain >"$log" 2>&1 </dev/null &
    pid=$!
    rss=0
    limit=$((DURATION + SETTLE + 300))
    for ((t = 0; t < limit; t++)); do
        kill -0 "$pid" 2>/dev/null || break
        # Sample RSS in the middle of the load.
        if [ "$t" -eq $((DURATION / 2 + 10)) ]; then
            rss=$(summed_mib "$pid")
        fi
        sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "watercooler -x $n still running after ${limit} s: stopping it" >&2
        kill -TERM "$pid"
    fi
    wait "$pid" || true
    up=$(sed -n 's/.* nodes up in \([0-9.]*\) s.*/\1/p' "$log" | head -1)
    if [ -f "$report" ]; then
        summary=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
line = "common height %d, tips %d at %d..%d, %d reorgs, %d transfers submitted, %d included, settled in %.1f s, auto paused on %s" % (
    r["common_height"], r["tips"], r["min_height"], r["max_height"], r["reorgs"],
    r["transfers_submitted"], r["transfers_included"], r["settle_secs"], r.get("auto_paused"))
m = r.get("mining")
if m:
    fmt = lambda v, f: "-" if v is None else f % v
    p = m.get("propagation") or {}
    line += "; %d blocks mined, %d on the best chain, stale rate %s, mean interval %s, propagation median/p90/max %s/%s/%s ms" % (
        m["blocks_mined"], m["blocks_on_best_chain"], fmt(None if m.get("stale_rate") is None else 100 * m["stale_rate"], "%.1f %%"),
        fmt(m.get("mean_interval_secs"), "%.2f s"), p.get("median_ms", "-"), p.get("p90_ms", "-"), p.get("max_ms", "-"))
print(r["converged"], line)
' "$report")
    else
        summary="- no report (see $log)"
    fi
    printf '%-6s %-10s %-16s %s\n' "$n" "${up:--}" "$rss" "$summary"
done
echo "logs and reports: $OUT"
