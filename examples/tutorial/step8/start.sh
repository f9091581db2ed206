#!/bin/sh
# Start the notes app in production. The environment gives the settings:
#   TRELLIS_SECRET_KEY     at least 32 random characters, the same on every machine
#   TRELLIS_ALLOWED_HOSTS  the host names the site answers to (notes.example.com)
#   TRELLIS_DATABASE_URL   postgresql://notes@db.internal/notes (default: sqlite:///app.db)
set -e
cd "$(dirname "$0")"

# Refuse to start with settings that are unsafe in production.
trellis check app.py --deploy
# Bring the database up to date before any worker serves a request.
trellis db upgrade
# Serve with two worker processes; behind a proxy such as nginx, which terminates TLS.
exec trellis run app.py --host 127.0.0.1 --workers 2
