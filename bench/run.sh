#!/usr/bin/env bash
# The chat-api benchmark, in one command (see bench/README.md):
#
#   bench/run.sh          chat-api, the thin reference and the Python peer (and, with
#                         BASELINE_BIN, an earlier chat-api build; with PGBOUNCER=1, chat-api
#                         through PgBouncer), scenario by scenario, then pgbench
#   bench/run.sh scale    one user with 1,000,000 chats against one with 1,000
#
# Knobs are environment variables (defaults in brackets): DURATION [10s],
# CONNECTIONS [64], THREADS [2], PG_URL [postgres://postgres@127.0.0.1:5432], PG_SSL [disable],
# CHAT_API_POOL [16], BASELINE_BIN [unset], THIN_DIR [../shared/peers/thin], SKIP_BUILD [0],
# SKIP_THIN [0], SKIP_PEER [0], SKIP_PGBENCH [0], PGBOUNCER [0], SCENARIOS [all eleven], and
# more in the README. Results: bench/results/<UTC timestamp>.json.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

MODE=${1:-compare}
case $MODE in
  compare | scale) ;;
  -h | --help | help)
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: bench/run.sh [compare|scale]   (got '$MODE')" >&2
    exit 2
    ;;
esac

export DURATION=${DURATION:-10s}
export CONNECTIONS=${CONNECTIONS:-64}
export THREADS=${THREADS:-2}
export PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
export CHAT_API_POOL=${CHAT_API_POOL:-16}
export SKIP_BUILD=${SKIP_BUILD:-0}
export SKIP_PEER=${SKIP_PEER:-0}
export SKIP_THIN=${SKIP_THIN:-0}
export PGBOUNCER=${PGBOUNCER:-0}
export SCENARIOS=${SCENARIOS:-get,list,list_deep_skip,list_deep_cursor,create,create_one_user,patch,delete,delete_one_user,mix,mix_one_writer}
# The thin reference service lives outside this repository; only this knob says where.
export THIN_DIR=${THIN_DIR:-$ROOT/../shared/peers/thin}
# Its build gets its own target directory (its own Cargo.lock, its own dependency
# versions), kept between runs so that only the first run compiles it.
export THIN_TARGET=${THIN_TARGET:-${XDG_CACHE_HOME:-$HOME/.cache}/chat-api-bench/thin-target}
export THIN_BIN=${THIN_BIN:-$THIN_TARGET/release/thin}

say() { echo "run.sh: $*" >&2; }
die() {
  say "$*"
  exit 1
}

# --- prerequisites -------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "wrk is missing: installing it with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >&2 ||
      { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >&2; } ||
      die "could not install wrk"
  else
    die "wrk is missing: install it (Debian/Ubuntu: sudo apt-get install wrk) and run again"
  fi
fi
command -v pgbench >/dev/null 2>&1 || die "pgbench is missing (Debian: sudo apt-get install postgresql-client)"
command -v psql >/dev/null 2>&1 || die "psql is missing (Debian: sudo apt-get install postgresql-client)"
command -v python3 >/dev/null 2>&1 || die "python3 is missing (Debian: sudo apt-get install python3 python3-venv)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "python3 >= 3.9 is needed"
if [[ $MODE == compare ]] && [[ ${PGBOUNCER,,} =~ ^(1|true|yes|on)$ ]]; then
  # Debian puts it in /usr/sbin, often not on a non-root PATH.
  if [[ -z ${PGBOUNCER_BIN:-} ]]; then
    PGBOUNCER_BIN=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  fi
  [[ -x $PGBOUNCER_BIN ]] ||
    die "PGBOUNCER=1 but pgbouncer is missing ($PGBOUNCER_BIN): install it (Debian/Ubuntu: sudo apt-get install pgbouncer), set PGBOUNCER_BIN, or run without PGBOUNCER=1"
  export PGBOUNCER_BIN
fi
pg_base=${PG_URL%%\?*}
psql -X -q -At "${pg_base%/}/postgres${PG_URL#"$pg_base"}" -c 'SELECT 1' >/dev/null ||
  die "PostgreSQL does not answer at $PG_URL (set PG_URL, e.g. postgres://user:password@host:5432)"

# --- build ---------------------------------------------------------------------
if [[ $SKIP_BUILD != 1 ]]; then
  command -v cargo >/dev/null 2>&1 || die "cargo is missing (or set SKIP_BUILD=1 with a built target/release/chat-api)"
  say "cargo build --release -p chat-api"
  (cd "$ROOT" && cargo build --release -p chat-api)
fi
if [[ $MODE == compare && $SKIP_THIN != 1 ]] && [[ $SKIP_BUILD != 1 || ! -x $THIN_BIN ]]; then
  [[ -f $THIN_DIR/Cargo.toml && -f $THIN_DIR/Cargo.lock ]] ||
    die "the thin reference is not at THIN_DIR=$THIN_DIR (set THIN_DIR, or SKIP_THIN=1)"
  command -v cargo >/dev/null 2>&1 || die "cargo is missing (needed once to build the thin reference; or SKIP_THIN=1)"
  say "building the thin reference (its own Cargo.lock, CARGO_TARGET_DIR=$THIN_TARGET; the first time takes minutes)"
  CARGO_TARGET_DIR=$THIN_TARGET cargo build --release --locked --manifest-path "$THIN_DIR/Cargo.toml"
fi
if [[ $MODE == compare && -n ${BASELINE_BIN:-} && ! -x $BASELINE_BIN ]]; then
  die "BASELINE_BIN=$BASELINE_BIN is not an executable (a chat-api built from the code to compare against)"
fi

# --- run -------------------------------------------------------------------------
BENCH_WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/chat-bench.XXXXXX")
export BENCH_WORK_DIR

# bench.py stops the servers itself; this is the backstop for a crash or a
# kill: every process group it started is listed in $BENCH_WORK_DIR/pids.
cleanup() {
  local pids=$BENCH_WORK_DIR/pids pgid
  [[ -s $pids ]] || return 0
  while read -r pgid; do
    [[ -n $pgid ]] && kill -TERM -- "-$pgid" 2>/dev/null || true
  done <"$pids"
  sleep 2
  while read -r pgid; do
    [[ -n $pgid ]] && kill -KILL -- "-$pgid" 2>/dev/null || true
  done <"$pids"
  : >"$pids"
}
trap cleanup EXIT

# bench.py runs in the background so that a Ctrl-C or a TERM sent to this
# script reaches it as SIGTERM, which it turns into an orderly stop (servers
# stopped, databases dropped, what was measured written out).
python3 "$HERE/bench.py" "$MODE" &
BENCH_PID=$!
forward() { kill -TERM "$BENCH_PID" 2>/dev/null || true; }
trap forward INT TERM
status=0
wait "$BENCH_PID" || status=$?
while kill -0 "$BENCH_PID" 2>/dev/null; do
  wait "$BENCH_PID" || status=$?
done
exit "$status"
