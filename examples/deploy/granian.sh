#!/bin/sh
# Serve a Trellis application with granian (pip install granian):
#
#     ./granian.sh myproject.web:app
#
# Address and workers come from granian's own variables: GRANIAN_HOST, GRANIAN_PORT,
# GRANIAN_WORKERS. Other granian options may follow the application.
set -eu
export GRANIAN_HOST="${GRANIAN_HOST:-127.0.0.1}"
export GRANIAN_PORT="${GRANIAN_PORT:-8000}"
export GRANIAN_WORKERS="${GRANIAN_WORKERS:-4}"
# --interface asgi: Trellis is an ASGI application (granian defaults to its own RSGI).
# --respawn-failed-workers: replace a worker that dies.
# --workers-kill-timeout: on SIGTERM, kill a worker still busy after 30 seconds.
exec granian --interface asgi --respawn-failed-workers --workers-kill-timeout 30 "$@"
