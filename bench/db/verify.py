"""Verify a running app against the TechEmpower rules for the db and fortunes tests.

    python verify.py PORT [--database-url URL] [--no-count] [--requests 512]

Written after TFB's toolset/test_types/verifications.py and fortune/fortune_html_parser.py
(TechEmpower's toolset rules); a "fail" refuses the app, a "warn" is reported only.

* Every response: status 200; ``Server``, ``Date``, ``Content-Type`` present; ``Content-Length``
  or ``Transfer-Encoding``; Date in IMF-fixdate form (warn); the Date of a second request made
  ``--date-wait`` s later must differ (no cached Date); non-empty body.
* GET /db (Accept as TFB sends for db): content type
  ``^application/json(; ?charset=(UTF|utf)-8)?$``; a JSON object with keys id and randomNumber
  (case-insensitive), integer values; id outside 1..10000, randomNumber > 10000, extra keys:
  warn; a one-element array: warn. Added here: the randomNumber must be the one stored for
  that id (fail), checked on every answer, the burst's too.
* GET /fortunes: content type ``^text/html; ?charset=(UTF|utf)-8$``; the body, parsed by the same
  normalising ``HTMLParser(convert_charrefs=False)`` as TFB's FortuneHTMLParser and rebuilt,
  must equal TFB's expected document.
* Work accounting (unless ``--no-count``): like TFB's siege run, ``--requests`` (512) requests
  at once per endpoint, each on its own connection; every one must answer 200 with a valid body.
  TFB reads pg_stat_statements; the local server does not preload it, so the counters of
  ``pg_stat_user_tables`` are read instead: world ``idx_scan`` >= requests and ``idx_tup_fetch``
  >= requests (one primary-key SELECT per /db request), fortune ``seq_scan`` >= requests and
  ``seq_tup_read`` >= 12 x requests (one SELECT of all rows per /fortunes request), rows with
  TFB's 1.1 % margin; more than 5 % above: warn. PostgreSQL publishes a backend's counters up to
  about 10 s after it goes idle, so this waits for them (``--stats-wait``).

The checking functions (``check_*``, ``normalise_fortunes``) are pure and import nothing beyond
the standard library, so tests/test_bench_db.py can call them without a server or a database.
Exit status 0 when nothing failed.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import re
import sys
import time
from datetime import datetime
from html.parser import HTMLParser

ACCEPT = {
    "db": "application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,"
    "*/*;q=0.7",
    "fortunes": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
}
PATHS = {"db": "/db", "fortunes": "/fortunes"}
CONTENT_TYPES = {
    "db": r"^application/json(; ?charset=(UTF|utf)-8)?$",
    "fortunes": r"^text/html; ?charset=(UTF|utf)-8$",
}
DATE_FORMAT = "%a, %d %b %Y %H:%M:%S %Z"

# FortuneHTMLParser.valid_fortune (TFB), line separator os.linesep == "\n" on Linux.
EXPECTED_FORTUNES = """<!doctype html><html>
<head><title>Fortunes</title></head>
<body><table>
<tr><th>id</th><th>message</th></tr>
<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser alert box.&quot;);&lt;/script&gt;</td></tr>
<tr><td>4</td><td>A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1</td></tr>
<tr><td>5</td><td>A computer program does what you tell it to do, not what you want it to do.</td></tr>
<tr><td>2</td><td>A computer scientist is someone who fixes things that aren&apos;t broken.</td></tr>
<tr><td>8</td><td>A list is only as strong as its weakest link. — Donald Knuth</td></tr>
<tr><td>0</td><td>Additional fortune added at request time.</td></tr>
<tr><td>3</td><td>After enough decimal places, nobody gives a damn.</td></tr>
<tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>
<tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr>
<tr><td>6</td><td>Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen</td></tr>
<tr><td>9</td><td>Feature: A bug with seniority.</td></tr>
<tr><td>1</td><td>fortune: No such file or directory</td></tr>
<tr><td>12</td><td>フレームワークのベンチマーク</td></tr>
</table></body></html>"""  # noqa: E501

FAIL, WARN = "fail", "warn"


# ---------------------------------------------------------------- fortunes document


class FortuneHTMLParser(HTMLParser):
    """TFB's FortuneHTMLParser: rebuilds a normalised document from the parse events."""

    IGNORED_TAGS = (
        "<meta>",
        "</meta>",
        "<link>",
        "</link>",
        "<script>",
        "</script>",
        "<thead>",
        "</thead>",
        "<tbody>",
        "</tbody>",
    )
    CHARREFS = {
        ("34", "034", "x22"): "&quot;",
        ("39", "039", "x27"): "&apos;",
        ("43", "043", "x2b"): "+",
        ("62", "062", "x3e"): "&gt;",
        ("60", "060", "x3c"): "&lt;",
        ("47", "047", "x2f"): "/",
        ("40", "040", "x28"): "(",
        ("41", "041", "x29"): ")",
    }

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.ignore_content = False
        self.body = []

    def handle_decl(self, decl):
        self.append(f"<!{decl.lower()}>")

    def handle_charref(self, name):
        val = name.lower()
        for names, text in self.CHARREFS.items():
            if val in names:
                self.append(text)

    def handle_entityref(self, name):
        self.append("—" if name == "mdash" else f"&{name};")

    def handle_starttag(self, tag, attrs):
        self.append(f"<{tag}>")
        if tag.lower() in ("table", "html"):
            self.append("\n")

    def handle_data(self, data):
        if data.strip() != "":
            self.append(data.replace("'", "&apos;").replace('"', "&quot;").replace(">", "&gt;"))

    def handle_endtag(self, tag):
        self.append(f"</{tag}>")
        if tag.lower() in ("tr", "head"):
            self.append("\n")

    def append(self, item):
        self.ignore_content = item == "<script>" or (self.ignore_content and item != "</script>")
        if not (self.ignore_content or item in self.IGNORED_TAGS):
            self.body.append(item)


def normalise_fortunes(html):
    """The document TFB compares: ``html`` parsed and rebuilt by FortuneHTMLParser."""
    parser = FortuneHTMLParser()
    parser.feed(html)
    parser.close()
    return "".join(parser.body)


def check_fortunes_body(body):
    """Problems with a /fortunes body (bytes, UTF-8): must rebuild to TFB's document."""
    if not body:
        return [(FAIL, "empty response body")]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [(FAIL, f"body is not UTF-8: {exc}")]
    got = normalise_fortunes(text)
    if got == EXPECTED_FORTUNES:
        return []
    want_lines, got_lines = EXPECTED_FORTUNES.split("\n"), got.split("\n")
    for i, (w, g) in enumerate(zip(want_lines, got_lines, strict=False)):
        if w != g:
            msg = f"fortunes document differs at line {i + 1}: expected {w!r}, got {g[:160]!r}"
            return [(FAIL, msg)]
    return [
        (
            FAIL,
            f"fortunes document has {len(got_lines)} lines after normalising, expected"
            f" {len(want_lines)}",
        )
    ]


# ---------------------------------------------------------------- db object


def check_world_object(obj, stored=None):
    """Problems with one ``{"id", "randomNumber"}`` object (TFB verify_randomnumber_object).

    ``stored``: ``{id: randomnumber}`` of the world table, to check the value is the real one.
    """
    if type(obj) is not dict:
        return [(FAIL, f"expected a JSON object, got {str(obj)[:20]!r}")]
    low = {k.lower(): v for k, v in obj.items()}
    problems = [
        (FAIL, f"response object is missing the key {k}")
        for k in ("id", "randomnumber")
        if k not in low
    ]
    extra = set(low) - {"id", "randomnumber"}
    if extra:
        problems.append((WARN, f"extra key(s) in the db object: {', '.join(sorted(extra))}"))
    if any(level == FAIL for level, _ in problems):
        return problems
    ints = {}
    for key in ("id", "randomnumber"):
        value = low[key]
        # TFB calls int(value) and fails on TypeError only; a bool or a float is no integer
        # in JSON terms, and a str would pass int(); be strict: JSON integers only.
        if type(value) is not int:
            problems.append((FAIL, f"{key} does not map to an integer: {value!r}"))
        else:
            ints[key] = value
    if "id" in ints and not 1 <= ints["id"] <= 10000:
        problems.append((WARN, f"id should be between 1 and 10,000: {ints['id']}"))
    if "randomnumber" in ints and ints["randomnumber"] > 10000:
        problems.append((WARN, f"randomNumber is over 10,000: {ints['randomnumber']}"))
    if stored is not None and len(ints) == 2 and stored.get(ints["id"]) != ints["randomnumber"]:
        problems.append(
            (
                FAIL,
                f"id {ints['id']}: randomNumber {ints['randomnumber']} is not the stored"
                f" {stored.get(ints['id'])}",
            )
        )
    return problems


def check_db_body(body, stored=None):
    """Problems with a /db body (bytes): one JSON object (a one-element array is a warn)."""
    if not body:
        return [(FAIL, "empty response body")]
    try:
        obj = json.loads(body)
    except ValueError as exc:
        return [(FAIL, f"invalid JSON: {exc}")]
    if type(obj) is list and len(obj) == 1:
        return [(WARN, "a one-element array instead of an object"), *check_world_object(obj[0])]
    return check_world_object(obj, stored)


# ---------------------------------------------------------------- headers


def check_headers(kind, headers):
    """Problems with the headers (a dict with lower-case names) of a ``kind`` response."""
    problems = [
        (FAIL, f"required response header missing: {name}")
        for name in ("Server", "Date", "Content-Type")
        if name.lower() not in headers
    ]
    if "content-length" not in headers and "transfer-encoding" not in headers:
        problems.append((FAIL, "neither Content-Length nor Transfer-Encoding"))
    date = headers.get("date")
    if date is not None:
        try:
            datetime.strptime(date, DATE_FORMAT)
        except ValueError:
            problems.append((WARN, f"Date {date!r} does not match {DATE_FORMAT!r}"))
    ctype = headers.get("content-type")
    if ctype is not None and not re.match(CONTENT_TYPES[kind], ctype):
        problems.append((FAIL, f"Content-Type {ctype!r} does not match {CONTENT_TYPES[kind]!r}"))
    return problems


def check_response(kind, status, headers, body, stored=None):
    """All problems with one answer to GET /db (``kind`` "db") or GET /fortunes."""
    problems = [] if status == 200 else [(FAIL, f"status {status}, expected 200")]
    problems += check_headers(kind, headers)
    if kind == "db":
        problems += check_db_body(body, stored)
    else:
        problems += check_fortunes_body(body)
    return problems


def check_date_fresh(first, second):
    """Problems if two Date values taken more than a second apart are equal (cached Date)."""
    if first is not None and first == second:
        return [(FAIL, f"Date is cached: {first!r} on two requests made seconds apart")]
    return []


def check_counts(kind, delta, requests):
    """Problems with the table-counter deltas of ``requests`` answered requests.

    ``delta``: for "db" ``{"idx_scan", "idx_tup_fetch"}`` of world, for "fortunes"
    ``{"seq_scan", "seq_tup_read"}`` of fortune.
    """
    if kind == "db":
        queries, rows = delta["idx_scan"], delta["idx_tup_fetch"]
        want_rows, what = requests, "world"
    else:
        queries, rows = delta["seq_scan"], delta["seq_tup_read"]
        want_rows, what = 12 * requests, "fortune"
    problems = []
    if queries < requests:
        problems.append(
            (FAIL, f"{what}: {queries} queries for {requests} requests (expected >= {requests})")
        )
    elif queries > requests * 1.05:
        problems.append((WARN, f"{what}: {queries} queries for {requests} requests (> 5 % more)"))
    if rows < want_rows * (1 - 0.011):
        problems.append(
            (FAIL, f"{what}: {rows} rows read for {requests} requests (expected >= {want_rows})")
        )
    elif rows > want_rows * 1.05:
        problems.append((WARN, f"{what}: {rows} rows read, expected about {want_rows}"))
    return problems


# ---------------------------------------------------------------- network (not used by tests)


def fetch(port, kind, timeout=15):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", PATHS[kind], headers={"Accept": ACCEPT[kind]})
        resp = conn.getresponse()
        body = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, headers, body
    finally:
        conn.close()


async def _one(port, kind):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {PATHS[kind]} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: {ACCEPT[kind]}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", ""):
        body = _dechunk(body)
    return status, headers, body


def _dechunk(data):
    out, pos = bytearray(), 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2


async def _burst(port, kind, n, timeout):
    return await asyncio.wait_for(
        asyncio.gather(*(_one(port, kind) for _ in range(n)), return_exceptions=True), timeout
    )


class Stats:
    """pg_stat_user_tables counters of world and fortune (psycopg, imported here only)."""

    def __init__(self, url):
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)

    def world(self):
        return dict(self.conn.execute("SELECT id, randomnumber FROM world").fetchall())

    def read(self):
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = self.conn.execute(
            "SELECT relname, coalesce(idx_scan, 0), coalesce(idx_tup_fetch, 0), seq_scan,"
            " seq_tup_read FROM pg_stat_user_tables WHERE relname IN ('world', 'fortune')"
        ).fetchall()
        got = {r[0]: r[1:] for r in rows}
        w, f = got.get("world", (0, 0, 0, 0)), got.get("fortune", (0, 0, 0, 0))
        return {
            "db": {"idx_scan": w[0], "idx_tup_fetch": w[1]},
            "fortunes": {"seq_scan": f[2], "seq_tup_read": f[3]},
        }


class Report:
    def __init__(self):
        self.failed = 0
        self.checks = 0

    def add(self, name, problems, detail=""):
        self.checks += 1
        if not problems:
            print(f"  ok   {name}{': ' + detail if detail else ''}")
            return
        for level, msg in problems:
            print(f"  {'FAIL' if level == FAIL else 'warn'} {name}: {msg}")
        if any(level == FAIL for level, _ in problems):
            self.failed += 1


def main(argv=None):
    from dbcommon import DATABASE_URL

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--database-url", default=DATABASE_URL)
    ap.add_argument("--requests", type=int, default=512)
    ap.add_argument("--no-count", action="store_true", help="skip the burst and the counters")
    ap.add_argument("--date-wait", type=float, default=2.0)
    ap.add_argument("--stats-wait", type=float, default=15.0)
    args = ap.parse_args(argv)
    report = Report()
    kinds = ("db", "fortunes")

    stats = Stats(args.database_url)
    stored = stats.world()
    first = {}
    for kind in kinds:
        status, headers, body = fetch(args.port, kind)
        first[kind] = headers.get("date")
        report.add(
            f"GET {PATHS[kind]}",
            check_response(kind, status, headers, body, stored),
            f"{status} {headers.get('content-type')!r} {len(body)} bytes",
        )
    time.sleep(args.date_wait)
    for kind in kinds:
        status, headers, body = fetch(args.port, kind)
        report.add(
            f"GET {PATHS[kind]} again after {args.date_wait:g} s",
            check_response(kind, status, headers, body, stored)
            + check_date_fresh(first[kind], headers.get("date")),
            f"Date {first[kind]!r} -> {headers.get('date')!r}",
        )

    if not args.no_count:
        before = stats.read()
        for kind in kinds:
            results = asyncio.run(_burst(args.port, kind, args.requests, 60))
            errors = [r for r in results if isinstance(r, BaseException)]
            problems = [(FAIL, f"{len(errors)} request(s) failed: {errors[0]!r}")] if errors else []
            bad = 0
            for r in results:
                if isinstance(r, BaseException):
                    continue
                p = [x for x in check_response(kind, *r, stored) if x[0] == FAIL]
                if p:
                    bad += 1
                    if bad <= 3:
                        problems += p
            if bad:
                problems.append((FAIL, f"{bad} of {args.requests} answers failed the checks"))
            report.add(
                f"{args.requests} concurrent GET {PATHS[kind]}",
                problems,
                f"{args.requests} answers verified",
            )
        deadline = time.monotonic() + args.stats_wait
        while True:
            after = stats.read()
            delta = {k: {c: after[k][c] - before[k][c] for c in after[k]} for k in kinds}
            done = not any(
                level == FAIL
                for k in kinds
                for level, _ in check_counts(k, delta[k], args.requests)
            )
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for kind in kinds:
            report.add(
                f"database work for {args.requests} x GET {PATHS[kind]}",
                check_counts(kind, delta[kind], args.requests),
                ", ".join(f"{c} +{v}" for c, v in delta[kind].items()),
            )
    print(f"VERIFY {report.checks - report.failed}/{report.checks}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
