"""gunicorn settings for a Trellis application, run by uvicorn's worker class.

    gunicorn -c gunicorn.conf.py myproject.web:app

Options on the command line win over this file (``--bind``, ``--workers`` ...).
"""

import os

# Worker processes: one per CPU core is a good start. Each imports the application and runs
# its start-up and shut-down hooks; they share nothing but the database and Redis.
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))

# The maintained worker class that runs uvicorn inside gunicorn (pip install uvicorn-worker).
worker_class = "uvicorn_worker.UvicornWorker"

# Several addresses at once: nginx on this machine through the Unix socket, and a port on
# loopback for health checks.
bind = ["unix:/run/myproject/web.sock", "127.0.0.1:8000"]

# On SIGTERM gunicorn stops accepting connections and lets each worker finish its requests;
# a worker still busy after graceful_timeout seconds is killed. Keep it below the process
# manager's own limit (systemd's TimeoutStopSec, docker stop's --time).
graceful_timeout = 30

# A worker that does not check in with gunicorn for this long is killed and replaced.
timeout = 60

# Seconds an idle keep-alive connection stays open (below the proxy's own keep-alive).
keepalive = 5

# Trellis reads X-Forwarded-For and X-Forwarded-Proto itself, from the proxies listed in
# TRELLIS_TRUSTED_PROXIES. Left at gunicorn's default (127.0.0.1), uvicorn would rewrite the
# client address too: an empty list leaves the decision to one place, the application.
forwarded_allow_ips = ""

# Logs to standard output and error, for journald or the container runtime.
accesslog = "-"
errorlog = "-"
