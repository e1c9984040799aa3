#!/usr/bin/env bash
# Serve Ticket Hub and its Huey consumer together; Ctrl-C or TERM (or either one exiting)
# stops both gracefully. One web process with threads by default: the embedded rate-limit
# store is in memory, so it must be one process. WEB_CONCURRENCY > 1 needs REDIS_URL (the
# app refuses otherwise).
#
# Stopping (README, "Operating it"): both children get TERM, which is graceful for each:
# gunicorn finishes the requests in flight (up to 30 s), and the consumer, started with
# `-g TERM`, finishes the tasks in flight (up to 60 s) before it exits. Each child runs in a
# session of its own, so a terminal's Ctrl-C (SIGINT to the whole foreground group, which
# both would take as "stop now") reaches only this script, which turns it into TERM.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-5000}

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

setsid "$BIN/huey_consumer" worker.huey --workers 2 --worker-type thread --delay 0.1 --max-delay 1 \
  --graceful-signal TERM --shutdown-timeout 60 &
pids+=($!)
setsid "$BIN/gunicorn" --no-control-socket --workers "${WEB_CONCURRENCY:-1}" --threads 8 \
  --graceful-timeout 30 --bind "$HOST:$PORT" --access-logfile - "app:create_app()" &
pids+=($!)
echo "Ticket Hub on http://$HOST:$PORT (Ctrl-C stops the app and its task worker)"
wait -n
