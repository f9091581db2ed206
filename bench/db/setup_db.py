"""Create the benchmark database and its TechEmpower tables (idempotent).

    python setup_db.py [URL]     # default: $BENCH_DATABASE_URL or dbcommon.DATABASE_URL

Creates the database named in the URL when it is missing (connecting to the server's
``postgres`` database to do so), then ``world`` (10,000 rows, ids 1..10000, randomnumber
1..10000) and ``fortune`` (the 12 TFB rows) exactly as TFB's create-postgres.sql does for the
lower-case tables. Rows are (re)written only when the tables differ from that; a second run
changes nothing. Needs psycopg (the bench venv has it).
"""

import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
from dbcommon import DATABASE_URL
from psycopg import sql

# toolset/databases/postgres/create-postgres.sql (TFB), ids 1..12.
FORTUNES = [
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. — Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "フレームワークのベンチマーク"),
]


def ensure_database(url):
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {} ENCODING 'UTF8'").format(sql.Identifier(name)))
        return True


def ensure_tables(url):
    done = []
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS World (id integer NOT NULL,"
            " randomNumber integer NOT NULL default 0, PRIMARY KEY (id))"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS Fortune (id integer NOT NULL,"
            " message varchar(2048) NOT NULL, PRIMARY KEY (id))"
        )
        n, lo, hi, bad = conn.execute(
            "SELECT count(*), min(id), max(id),"
            " count(*) FILTER (WHERE randomnumber NOT BETWEEN 1 AND 10000) FROM world"
        ).fetchone()
        if (n, lo, hi, bad) != (10000, 1, 10000, 0):
            conn.execute("TRUNCATE world")
            conn.execute(
                "INSERT INTO World (id, randomnumber) SELECT x.id,"
                " least(floor(random() * 10000 + 1), 10000)"
                " FROM generate_series(1, 10000) AS x(id)"
            )
            done.append("world: 10,000 rows written")
        rows = conn.execute("SELECT id, message FROM fortune ORDER BY id").fetchall()
        if rows != FORTUNES:
            conn.execute("TRUNCATE fortune")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO Fortune (id, message) VALUES (%s, %s)", FORTUNES)
            done.append("fortune: 12 rows written")
    if done:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE world")
            conn.execute("VACUUM ANALYZE fortune")
    return done


def main(argv):
    url = argv[1] if len(argv) > 1 else DATABASE_URL
    if ensure_database(url):
        print(f"created database {urlsplit(url).path.lstrip('/')}")
    done = ensure_tables(url)
    print("; ".join(done) if done else "world and fortune already hold the TFB data")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
