#!/bin/sh
# ADDJOB throughput with the AOF off, everysec, always (group commit), and always with
# one connection (every command waits for its own fsync). Each scenario runs ROUNDS
# times, interleaved, on a fresh server with --threads 1; the median is printed with the
# ratio to AOF off. Load generator: redis-benchmark (redis-tools).
#
#   bench/aof/aof_bench.sh [path/to/disque-server]    (ROUNDS=3 REQUESTS=100000)
set -eu
BIN=${1:-build/disque-server}
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-100000}
BODY=0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789
PORT=$(( 30000 + $$ % 5000 ))
DIR=$(mktemp -d /tmp/disque-aof-bench-XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM

# run <mode> <connections> <requests>: prints requests per second
run() {
  rm -f "$DIR"/*.aof
  case $1 in
    off) args="--appendonly no" ;;
    *) args="--appendonly yes --appendfsync $1" ;;
  esac
  # shellcheck disable=SC2086
  "$BIN" --port "$PORT" --bind 127.0.0.1 --dir "$DIR" --threads 1 $args >"$DIR/log" 2>&1 &
  PID=$!
  i=0
  until redis-cli -p "$PORT" ping >/dev/null 2>&1; do i=$((i + 1)); [ $i -gt 100 ] && exit 1; sleep 0.05; done
  redis-benchmark -p "$PORT" -c "$2" -n "$3" -q ADDJOB q "$BODY" 0 2>/dev/null |
    tr '\r' '\n' | grep "requests per second" | tail -1 | sed 's/.*: \([0-9.]*\) requests per second.*/\1/'
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

SCENARIOS="off:50 everysec:50 always:50 always:1"
for r in $(seq "$ROUNDS"); do
  for s in $SCENARIOS; do
    mode=${s%%:*}; conns=${s##*:}
    n=$REQUESTS; [ "$conns" = 1 ] && n=$((REQUESTS / 20))
    echo "$s $(run "$mode" "$conns" "$n")" >>"$DIR/results"
    echo "round $r $s done" >&2
  done
done
base=$(grep '^off:50 ' "$DIR/results" | cut -d' ' -f2 | median)
printf '%-16s %12s %8s\n' scenario "jobs/s" "vs off"
for s in $SCENARIOS; do
  m=$(grep "^$s " "$DIR/results" | cut -d' ' -f2 | median)
  awk -v s="$s" -v m="$m" -v b="$base" 'BEGIN { printf "%-16s %12.0f %8.2f\n", s, m, m / b }'
done
