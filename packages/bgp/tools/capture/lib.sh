# Shared helpers for the run-*.sh capture scripts (sourced, POSIX sh).
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(cd "$HERE/../../test/vectors/captured" && pwd)
RUN=${RUN:-/tmp/bgpcap}
mkdir -p "$RUN"
PIDS=""

# start NAME CMD...: run a daemon in the background, logging to $RUN/NAME.log
start() {
  name=$1; shift
  "$@" >"$RUN/$name.log" 2>&1 &
  PIDS="$PIDS $!"
  echo "started $name (pid $!): $*" >&2
}
stop_all() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
  PIDS=""
}
trap stop_all EXIT INT TERM

# wait_listen ADDR:PORT: wait until something listens there (max ~20 s)
wait_listen() {
  i=0
  until ss -ltnH "( sport = :${1##*:} )" | grep -qF "$1"; do
    i=$((i + 1)); [ $i -gt 40 ] && { echo "nothing listens on $1" >&2; return 1; }
    sleep 0.5
  done
}

# cap DAEMON-VERSION SCENARIO HARNESS-ARGS...: one capture into $OUT
cap() {
  dv=$1; sc=$2; shift 2
  node "$HERE/capture.mjs" --source "$SOURCE" --meta "$HERE/meta/${dv%%-*}-$sc.json" \
    --out "$OUT/$dv-$sc.json" "$@"
}
