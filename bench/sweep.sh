#!/usr/bin/env bash
# The pool-size sweep behind DATABASE_MAX_CONNECTIONS's default (see
# docs/performance.md): chat-api alone (no peer, no pgbench), once per pool size
# and repetition, then one table of requests/s per scenario, the median of the
# repetitions.
#
#   bench/sweep.sh                       POOLS="16 24 32 48" REPEAT=3
#   POOLS="16 32" REPEAT=2 SCENARIOS=get,patch bench/sweep.sh
#
# Every other knob of bench/run.sh applies (DURATION, CONNECTIONS, PG_URL, ...).
# Writes bench/results/sweep-<UTC timestamp>.json.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

POOLS=${POOLS:-16 24 32 48}
REPEAT=${REPEAT:-3}
export SCENARIOS=${SCENARIOS:-get,list,create,patch,mix}
export SKIP_PEER=1 SKIP_THIN=1 SKIP_PGBENCH=1 PGBOUNCER=0
unset BASELINE_BIN

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  (cd "$ROOT" && cargo build --release -p chat-api)
fi
export SKIP_BUILD=1

runs=()
for ((rep = 1; rep <= REPEAT; rep++)); do
  # Pool sizes interleaved, not one after the other, so that a slow minute of
  # the machine does not land on a single pool size.
  for pool in $POOLS; do
    echo "sweep.sh: repetition $rep/$REPEAT, pool $pool" >&2
    before=$(ls "$HERE/results" 2>/dev/null | grep -v -e '^sweep-' -e '^scale-' | sort | tail -n 1 || true)
    CHAT_API_POOL=$pool "$HERE/run.sh" compare >/dev/null
    after=$(ls "$HERE/results" | grep -v -e '^sweep-' -e '^scale-' | sort | tail -n 1)
    [[ $after != "$before" ]] || { echo "sweep.sh: run.sh wrote no result" >&2; exit 1; }
    runs+=("$HERE/results/$after")
  done
done

python3 - "$HERE/results" "${runs[@]}" <<'PY'
import json, statistics, sys, time
from collections import defaultdict

out_dir, paths = sys.argv[1], sys.argv[2:]
rps = defaultdict(lambda: defaultdict(list))  # scenario -> pool -> [rps]
p99 = defaultdict(lambda: defaultdict(list))
for path in paths:
    run = json.load(open(path))
    pool = run["config"]["chat_api_pool"]
    for name, result in run["scenarios"].items():
        mine = result.get("chat-api")
        if mine and not mine.get("errors"):
            rps[name][pool].append(mine["rps"])
            p99[name][pool].append(mine["p99_ms"])

pools = sorted({p for s in rps.values() for p in s})
width = max(len(s) for s in rps) + 2
print("requests/s (median of %d), p99 ms in brackets" % max(len(v) for s in rps.values() for v in s.values()))
print("scenario".ljust(width) + "".join(("pool %d" % p).rjust(18) for p in pools))
for name in rps:
    cells = []
    for p in pools:
        if rps[name][p]:
            cells.append(("%.0f (%.1f)" % (statistics.median(rps[name][p]), statistics.median(p99[name][p]))).rjust(18))
        else:
            cells.append("-".rjust(18))
    print(name.ljust(width) + "".join(cells))

summary = {
    "runs": paths,
    "rps": {s: {str(p): v for p, v in by_pool.items()} for s, by_pool in rps.items()},
    "p99_ms": {s: {str(p): v for p, v in by_pool.items()} for s, by_pool in p99.items()},
}
target = "%s/sweep-%s.json" % (out_dir, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
json.dump(summary, open(target, "w"), indent=2)
print("written: " + target)
PY
