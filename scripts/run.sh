#!/usr/bin/env bash
# The last step of `make run`: the web host, one job worker and the support mail listener, side by
# side, as one command.
#
#   python -m server on HOST:PORT (default 127.0.0.1:8501)    uvicorn serving server:app: the app,
#                                                              /healthz, /readyz, /metrics, /api
#   python -m crm_core worker                                  the queued jobs and the schedules
#   python -m crm_core mail-in on HOST:MAIL_PORT (8025)       email-to-case (SMTP, decision 0031);
#                                                              MAIL_PORT=0 leaves it out
#
# Ctrl-C stops them all, and so does any one ending: the others are stopped and the script exits
# with the status of the one that ended first (130 after Ctrl-C).
#
# Each child leads a process group of its own, so the terminal's Ctrl-C reaches this script
# alone and each group gets exactly one SIGTERM: uvicorn shuts down gracefully; Huey stops at
# once (a job it was running is marked interrupted when a worker starts again, and can be
# retried). A group still alive STOP_SECONDS later is killed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=${BIN:-.venv/bin}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8501}
MAIL_PORT=${MAIL_PORT:-8025}
STOP_SECONDS=${STOP_SECONDS:-20}

# /metrics merges the samples both processes write here (prometheus-client's multiprocess mode);
# a new run starts from an empty folder, as that mode requires
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-data/metrics}
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

set -m  # job control: every background child gets its own process group (its pid is the group id)
"$BIN/python" -m server --host "$HOST" --port "$PORT" &
web=$!
"$BIN/python" -m crm_core worker &
worker=$!
children=("$web" "$worker")
mail=""
if [[ "$MAIL_PORT" != 0 ]]; then
    "$BIN/python" -m crm_core mail-in --host "$HOST" --port "$MAIL_PORT" &
    mail=$!
    children+=("$mail")
fi
set +m
echo "run.sh: Kestrel CRM on http://$HOST:$PORT (web pid $web, worker pid $worker${mail:+, mail-in pid $mail on $HOST:$MAIL_PORT}); Ctrl-C stops all" >&2

source scripts/children.sh

trap 'stop_children; exit 130' INT
trap 'stop_children; exit 143' TERM

wait -n -p ended "${children[@]}"
status=$?
case "${ended:-}" in
    "$web") name="web server" ;;
    "$worker") name="job worker" ;;
    *) name="mail listener" ;;
esac
echo "run.sh: the $name ended (status $status); stopping the others" >&2
# what is left of its group lost its parent (a killed Huey consumer leaves its worker processes
# waiting for a stop flag nobody will set): nothing there can shut down gracefully any more
[[ -n "${ended:-}" ]] && kill -KILL -- "-$ended" 2>/dev/null
stop_children
exit "$status"
