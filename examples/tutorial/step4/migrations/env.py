"""Alembic's environment for this project, run by ``trellis db ...``.

Trellis does the work: it connects to each database of the application's ``Database``
(the async engine), compares the models with the database for ``makemigrations`` and
``check``, and uses batch mode on SQLite. Keyword arguments given to ``run_migrations``
go to Alembic's ``context.configure()`` and win over Trellis's, for example
``run_migrations(compare_server_default=True)``.
"""

from trellis.contrib.db.migrations import run_migrations

run_migrations()
