"""The database benchmark's verifier (bench/db/verify.py) accepts TFB-valid answers only.

Pure checks, no server and no database: verify.py imports nothing beyond the standard library
at module level.
"""

import importlib.util
import json
import sys
from html import escape
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "bench" / "db" / "verify.py"
_spec = importlib.util.spec_from_file_location("bench_db_verify", _PATH)
assert _spec is not None and _spec.loader is not None
verify = importlib.util.module_from_spec(_spec)
sys.modules["bench_db_verify"] = verify
_spec.loader.exec_module(verify)

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
    (0, "Additional fortune added at request time."),
]


def page(rows, esc=escape, doctype="<!DOCTYPE html>"):
    body = "".join(f"<tr><td>{i}</td><td>{esc(m)}</td></tr>\n" for i, m in rows)
    return (
        f"{doctype}\n<html>\n<head><title>Fortunes</title></head>\n<body>\n<table>\n"
        f"<tr><th>id</th><th>message</th></tr>\n{body}</table>\n</body>\n</html>\n"
    ).encode()


def by_message(rows):
    return sorted(rows, key=lambda r: r[1])


def fails(problems):
    return [msg for level, msg in problems if level == "fail"]


def test_escaped_sorted_document_passes():
    assert verify.check_fortunes_body(page(by_message(FORTUNES))) == []


def test_other_valid_escapings_pass():
    # Jinja2 writes &#34; and &#39;; a minimal escaper leaves quotes alone; tbody, meta,
    # attributes, doctype case and whitespace are all normalised away, &mdash; too.
    def minimal(m):
        return m.replace("&", "&amp;").replace("<", "&lt;").replace("—", "&mdash;")

    html = page(by_message(FORTUNES), esc=minimal, doctype="<!doctype HTML>").decode()
    html = html.replace("<head>", '<head><meta charset="utf-8">').replace(
        "<table>", "<table class='x'><tbody>"
    )
    html = html.replace("</table>", "</tbody></table>")
    assert verify.check_fortunes_body(html.encode()) == []
    jinja_like = page(by_message(FORTUNES), esc=lambda m: escape(m).replace("&#x27;", "&#39;"))
    assert verify.check_fortunes_body(jinja_like) == []


def test_unescaped_script_fails():
    problems = verify.check_fortunes_body(page(by_message(FORTUNES), esc=lambda m: m))
    assert fails(problems)
    assert "line 5" in fails(problems)[0]


def test_wrong_order_missing_row_and_bad_bytes_fail():
    assert fails(verify.check_fortunes_body(page(FORTUNES)))  # database order, not sorted
    assert fails(verify.check_fortunes_body(page(by_message(FORTUNES[:-1]))))  # no added row
    latin1 = page(by_message(FORTUNES)).decode().encode("utf-8").replace(b"\xe3", b"\xff")
    assert fails(verify.check_fortunes_body(latin1))
    assert fails(verify.check_fortunes_body(b""))


def test_normalised_document_is_tfb_expected():
    assert verify.normalise_fortunes(page(by_message(FORTUNES)).decode()) == (
        verify.EXPECTED_FORTUNES
    )


def test_db_body():
    stored = {42: 7}
    assert verify.check_db_body(b'{"id":42,"randomNumber":7}', stored) == []
    assert verify.check_db_body(b'{"ID":42,"randomnumber":7}', stored) == []
    assert fails(verify.check_db_body(b'{"id":42,"randomNumber":8}', stored))  # not stored
    assert fails(verify.check_db_body(b'{"id":42,"randomNumber":"7"}'))
    assert fails(verify.check_db_body(b'{"id":42}'))
    assert fails(verify.check_db_body(b"[1, 2]"))
    assert fails(verify.check_db_body(b"not json"))
    warns = verify.check_db_body(json.dumps([{"id": 20000, "randomNumber": 1, "x": 1}]).encode())
    assert not fails(warns) and len(warns) == 3  # array, id range, extra key: warnings only


@pytest.mark.parametrize(
    ("kind", "ctype", "ok"),
    [
        ("fortunes", "text/html; charset=utf-8", True),
        ("fortunes", "text/html;charset=UTF-8", True),
        ("fortunes", "text/html", False),
        ("db", "application/json", True),
        ("db", "application/json; charset=utf-8", True),
        ("db", "text/json", False),
    ],
)
def test_headers(kind, ctype, ok):
    headers = {
        "server": "uvicorn",
        "date": "Sat, 21 Nov 2026 02:06:42 GMT",
        "content-type": ctype,
        "content-length": "10",
    }
    assert (not fails(verify.check_headers(kind, headers))) is ok


def test_headers_required_and_date():
    assert len(fails(verify.check_headers("db", {"content-type": "application/json"}))) == 3
    chunked = {
        "server": "s",
        "date": "yesterday",
        "content-type": "application/json",
        "transfer-encoding": "chunked",
    }
    assert verify.check_headers("db", chunked) == [
        ("warn", "Date 'yesterday' does not match '%a, %d %b %Y %H:%M:%S %Z'")
    ]
    assert fails(verify.check_date_fresh("a", "a"))
    assert not verify.check_date_fresh("a", "b")
    assert fails(verify.check_response("db", 500, {}, b'{"id":1,"randomNumber":1}'))


def test_counts():
    assert verify.check_counts("db", {"idx_scan": 512, "idx_tup_fetch": 512}, 512) == []
    assert fails(verify.check_counts("db", {"idx_scan": 100, "idx_tup_fetch": 100}, 512))
    assert verify.check_counts("fortunes", {"seq_scan": 512, "seq_tup_read": 6144}, 512) == []
    assert fails(verify.check_counts("fortunes", {"seq_scan": 512, "seq_tup_read": 512}, 512))
    extra = verify.check_counts("fortunes", {"seq_scan": 1024, "seq_tup_read": 6144}, 512)
    assert extra and not fails(extra)
