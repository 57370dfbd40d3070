#!/bin/bash
# Instructions, not seconds: runs one chat-api server under callgrind on a fresh
# database, drives it with drive.py, and prints the process's total instruction
# count (repeatable whatever else the machine does; see docs/performance.md).
#
#   bench/callgrind/run.sh BINARY N LABEL [MODE]
#
# MODE picks what follows N creates: g (N reads), l (N first pages of 20),
# d (N deletes), any combination (default cgld); c alone: creates only; N=0: start
# and stop only. Needs valgrind, psql and python3, and PostgreSQL on
# 127.0.0.1:5432 (user postgres). Output files go to $OUT_DIR (default /tmp).
set -e
bin=$1; n=$2; label=$3; mode=${4:-cgld}
db=cg_${label}_$RANDOM$RANDOM
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
url=postgres://postgres@127.0.0.1:5432/$db
DATABASE_URL=$url $bin migrate >/dev/null 2>&1
port=$((20000 + RANDOM % 20000))
out=${OUT_DIR:-/tmp}/cg.$label.$n.$mode.out
DATABASE_URL=$url BIND_ADDRESS=127.0.0.1:$port JWT_SECRET=callgrind-secret-that-is-long-enough-0123456789 RUST_LOG=warn HTTP_WORKERS=1 APP_ENV=production RUN_MIGRATIONS=false \
  valgrind --tool=callgrind --callgrind-out-file=$out $bin serve >${OUT_DIR:-/tmp}/log.$label.$n.$mode 2>&1 &
vpid=$!
for i in $(seq 1 120); do curl -sf http://127.0.0.1:$port/health/live >/dev/null && break; sleep 0.5; done
python3 "$(dirname "$0")"/drive.py $port $n $mode >/dev/null
kill -TERM $vpid; wait $vpid || true
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $db WITH (FORCE)" postgres
grep -m1 "^summary:\|^totals:" $out
