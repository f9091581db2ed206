"""MultiDict, QueryParams, Headers, MutableHeaders, URL and State."""

from __future__ import annotations

import copy
import pickle

import pytest

from trellis import URL, Headers, QueryParams
from trellis.datastructures import MultiDict, MutableHeaders, State

# --- MultiDict ------------------------------------------------------------------------------


def test_multidict_last_value_wins_and_getlist_keeps_all() -> None:
    md = MultiDict([("a", 1), ("b", 2), ("a", 3)])
    assert md["a"] == 3
    assert md.get("a") == 3
    assert md.getlist("a") == [1, 3]
    assert md.getlist("missing") == []
    assert md.get("missing") is None
    assert md.get("missing", 0) == 0
    assert list(md) == ["a", "b"]
    assert len(md) == 2
    assert "a" in md and "z" not in md
    assert md.multi_items() == [("a", 1), ("b", 2), ("a", 3)]
    with pytest.raises(KeyError):
        md["missing"]


def test_multidict_from_mapping_multidict_and_nothing() -> None:
    assert MultiDict({"a": 1}).multi_items() == [("a", 1)]
    original = MultiDict([("a", 1), ("a", 2)])
    assert MultiDict(original).getlist("a") == [1, 2]
    assert MultiDict().multi_items() == []
    assert len(MultiDict(None)) == 0


def test_multidict_multi_items_is_a_copy() -> None:
    md = MultiDict([("a", 1)])
    md.multi_items().append(("b", 2))
    assert "b" not in md


def test_multidict_equality_and_repr() -> None:
    assert MultiDict([("a", 1), ("b", 2)]) == MultiDict([("b", 2), ("a", 1)])
    assert MultiDict([("a", 1)]) != MultiDict([("a", 1), ("a", 1)])
    assert MultiDict([("a", 1)]) != {"a": 1}
    assert repr(MultiDict([("a", 1)])) == "MultiDict([('a', 1)])"
    with pytest.raises(TypeError):
        hash(MultiDict())


def test_multidict_is_read_only() -> None:
    md = MultiDict([("a", 1)])
    with pytest.raises(TypeError):
        md["a"] = 2  # type: ignore[index]


# --- QueryParams ----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["a=1&b=2&a=3", b"a=1&b=2&a=3"])
def test_query_params_from_str_or_bytes(raw: str | bytes) -> None:
    q = QueryParams(raw)
    assert q["a"] == "3"
    assert q.getlist("a") == ["1", "3"]
    assert q["b"] == "2"


def test_query_params_blank_values_are_kept() -> None:
    q = QueryParams("a=&b&c=1")
    assert q["a"] == ""
    assert q["b"] == ""
    assert q.multi_items() == [("a", ""), ("b", ""), ("c", "1")]


def test_query_params_decoding() -> None:
    q = QueryParams("name=J%C3%A9r%C3%B4me&space=a+b&plus=a%2Bb&amp=%26")
    assert q["name"] == "Jérôme"
    assert q["space"] == "a b"
    assert q["plus"] == "a+b"
    assert q["amp"] == "&"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a=%zz", "%zz"),  # not an escape: kept literally
        ("a=%", "%"),
        ("a=100%", "100%"),
        ("a=%4", "%4"),
        ("a=%ff", "\ufffd"),  # an escape, but not UTF-8: replaced, never an exception
    ],
)
def test_query_params_invalid_escapes_never_raise(raw: str, expected: str) -> None:
    assert QueryParams(raw)["a"] == expected


def test_query_params_raw_utf8_bytes_are_read_as_utf8() -> None:
    # curl and some clients send UTF-8 without percent-encoding it.
    q = QueryParams("n=é&m=%C3%A9".encode())
    assert q["n"] == "é"
    assert q["m"] == "é"


def test_query_params_raw_invalid_bytes_are_replaced() -> None:
    assert QueryParams(b"a=\xff\xfe")["a"] == "\ufffd\ufffd"


def test_query_params_from_pairs_and_mapping_and_str() -> None:
    assert QueryParams([("a", "1"), ("a", "2")]).getlist("a") == ["1", "2"]
    assert QueryParams({"x": "y"})["x"] == "y"
    assert len(QueryParams()) == 0
    assert str(QueryParams([("a", "1 2"), ("b", "&"), ("a", "3")])) == "a=1+2&b=%26&a=3"
    assert str(QueryParams("")) == ""


def test_query_params_separators_and_empty_pairs() -> None:
    q = QueryParams("&&a=1&&=x&")
    assert q["a"] == "1"
    assert q.get("") == "x"


# --- Headers --------------------------------------------------------------------------------


def test_headers_case_insensitive_and_multi_valued() -> None:
    h = Headers(raw=[(b"content-type", b"text/plain"), (b"x-tag", b"a"), (b"x-tag", b"b")])
    assert h["Content-Type"] == "text/plain"
    assert h["CONTENT-TYPE"] == "text/plain"
    assert h.get("X-Tag") == "a"  # the first value
    assert h.getlist("x-TAG") == ["a", "b"]
    assert h.getlist("missing") == []
    assert h.get("missing") is None
    assert h.get("missing", "d") == "d"
    assert "X-TAG" in h
    assert "nope" not in h
    assert 42 not in h  # type: ignore[comparison-overlap]
    assert list(h) == ["content-type", "x-tag"]
    assert len(h) == 2
    assert h.items() == [("content-type", "text/plain"), ("x-tag", "a"), ("x-tag", "b")]
    with pytest.raises(KeyError):
        h["missing"]


def test_headers_from_mapping_and_pairs_lower_cases_names() -> None:
    h = Headers({"X-Custom": "1"})
    assert h.raw == [(b"x-custom", b"1")]
    h2 = Headers([("A", "1"), ("a", "2")])
    assert h2.getlist("a") == ["1", "2"]
    assert Headers().raw == []


def test_headers_wrap_raw_without_copy() -> None:
    raw = [(b"a", b"1")]
    h = Headers(raw=raw)
    raw.append((b"b", b"2"))
    assert h["b"] == "2"


def test_headers_latin1_values() -> None:
    h = Headers(raw=[(b"x", "café".encode("latin-1"))])
    assert h["x"] == "café"


def test_headers_equality_and_repr() -> None:
    assert Headers({"a": "1", "b": "2"}) == Headers([("b", "2"), ("a", "1")])
    assert Headers({"a": "1"}) != Headers({"a": "2"})
    assert Headers({"a": "1"}) != {"a": "1"}
    assert repr(Headers({"a": "1"})) == "Headers([('a', '1')])"
    with pytest.raises(TypeError):
        hash(Headers())


# --- MutableHeaders -------------------------------------------------------------------------


def test_mutable_headers_set_replaces_every_value() -> None:
    h = MutableHeaders(raw=[(b"x", b"1"), (b"y", b"0"), (b"x", b"2")])
    h["X"] = "3"
    assert h.raw == [(b"x", b"3"), (b"y", b"0")]
    h["new"] = "n"
    assert h["new"] == "n"


def test_mutable_headers_append_keeps_existing() -> None:
    h = MutableHeaders()
    h.append("Set-Cookie", "a=1")
    h.append("set-cookie", "b=2")
    assert h.getlist("set-cookie") == ["a=1", "b=2"]


def test_mutable_headers_delete() -> None:
    h = MutableHeaders(raw=[(b"x", b"1"), (b"x", b"2"), (b"y", b"3")])
    del h["X"]
    assert h.raw == [(b"y", b"3")]
    del h["absent"]  # no error: nothing to remove
    assert h.raw == [(b"y", b"3")]


def test_mutable_headers_setdefault() -> None:
    h = MutableHeaders()
    assert h.setdefault("cache-control", "no-store") == "no-store"
    assert h.setdefault("Cache-Control", "public") == "no-store"
    assert h.getlist("cache-control") == ["no-store"]


def test_mutable_headers_update() -> None:
    h = MutableHeaders(raw=[(b"a", b"1"), (b"a", b"2")])
    h.update({"A": "3", "b": "4"})
    h.update([("c", "5")])
    assert h.items() == [("a", "3"), ("b", "4"), ("c", "5")]


def test_mutable_headers_add_vary() -> None:
    h = MutableHeaders()
    h.add_vary("Accept-Encoding")
    h.add_vary("Origin")
    h.add_vary("accept-encoding")  # already listed, any case
    h.add_vary("ORIGIN")
    assert h["vary"] == "Accept-Encoding, Origin"
    assert h.getlist("vary") == ["Accept-Encoding, Origin"]


def test_mutable_headers_write_through_to_the_raw_list() -> None:
    raw: list[tuple[bytes, bytes]] = []
    MutableHeaders(raw=raw)["x"] = "1"
    assert raw == [(b"x", b"1")]


@pytest.mark.parametrize(
    "value",
    [
        "a\r\nSet-Cookie: evil=1",
        "a\nb",
        "a\rb",
        "a\x00b",
        "a\x01b",
        "a\x1fb",
        "a\x7fb",
    ],
)
def test_mutable_headers_refuse_control_characters_in_values(value: str) -> None:
    h = MutableHeaders()
    with pytest.raises(ValueError, match="refused"):
        h["x-test"] = value
    with pytest.raises(ValueError, match="refused"):
        h.append("x-test", value)
    with pytest.raises(ValueError, match="refused"):
        h.setdefault("x-test", value)
    with pytest.raises(ValueError, match="refused"):
        h.update({"x-test": value})
    assert h.raw == []


@pytest.mark.parametrize(
    "name", ["", "x-a\r\nx-b", "x:y", "x y", "x\ty", "x\x00", "x(y)", "é", "x\n"]
)
def test_mutable_headers_refuse_invalid_names(name: str) -> None:
    h = MutableHeaders()
    with pytest.raises(ValueError, match="invalid header name"):
        h[name] = "v"
    with pytest.raises(ValueError, match="invalid header name"):
        h.append(name, "v")
    assert h.raw == []


def test_mutable_headers_allow_tab_and_latin1_and_refuse_other_text() -> None:
    h = MutableHeaders()
    h["x-a"] = "a\tb"
    h["x-b"] = "café"
    assert h.raw == [(b"x-a", b"a\tb"), (b"x-b", "café".encode("latin-1"))]
    with pytest.raises(ValueError, match="latin-1"):
        h["x-c"] = "€"


def test_mutable_headers_refuse_non_str_values() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        MutableHeaders()["x-n"] = 5  # type: ignore[assignment]


# --- URL ------------------------------------------------------------------------------------


def test_url_parts() -> None:
    url = URL("https://user@example.com:8443/a/b?x=1&y=2#frag")
    assert url.scheme == "https"
    assert url.netloc == "user@example.com:8443"
    assert url.hostname == "example.com"
    assert url.port == 8443
    assert url.path == "/a/b"
    assert url.query == "x=1&y=2"
    assert url.fragment == "frag"
    assert url.is_secure
    assert not URL("http://example.com").is_secure
    assert URL("wss://example.com").is_secure
    assert str(url) == "https://user@example.com:8443/a/b?x=1&y=2#frag"
    assert repr(URL("http://a/")) == "URL('http://a/')"


@pytest.mark.parametrize("netloc", ["example.com:abc", "example.com:99999", "example.com:-1"])
def test_url_invalid_port_is_none(netloc: str) -> None:
    url = URL(f"http://{netloc}/p")
    assert url.port is None
    assert url.hostname == "example.com"


def test_url_replace() -> None:
    url = URL("http://example.com/a?x=1")
    assert str(url.replace(scheme="https")) == "https://example.com/a?x=1"
    assert str(url.replace(netloc="other:81", path="/b")) == "http://other:81/b?x=1"
    assert str(url.replace(query="")) == "http://example.com/a"
    assert str(url.replace(fragment="top")) == "http://example.com/a?x=1#top"
    assert str(url) == "http://example.com/a?x=1"  # unchanged
    with pytest.raises(ValueError):
        url.replace(hostname="nope")


def test_url_include_query_params() -> None:
    url = URL("http://example.com/list?page=1&sort=name&tag=a&tag=b&blank=")
    new = url.include_query_params(page=2, q="a b")
    assert new.query == "sort=name&tag=a&tag=b&blank=&page=2&q=a+b"
    assert str(URL("http://x/").include_query_params(a=1)) == "http://x/?a=1"
    assert url.include_query_params(tag="c").query == "page=1&sort=name&blank=&tag=c"


def test_url_equality_and_hash() -> None:
    assert URL("http://a/") == URL("http://a/")
    assert URL("http://a/") == "http://a/"
    assert URL("http://a/") != URL("http://b/")
    assert URL("http://a/") != 5
    assert len({URL("http://a/"), URL("http://a/")}) == 1


def _scope(**extra: object) -> dict[str, object]:
    scope: dict[str, object] = {
        "type": "http",
        "scheme": "http",
        "path": "/p",
        "query_string": b"",
        "headers": [(b"host", b"example.com")],
    }
    scope.update(extra)
    return scope


def test_url_from_scope_basic() -> None:
    assert str(URL.from_scope(_scope(query_string=b"a=1"))) == "http://example.com/p?a=1"
    assert str(URL.from_scope(_scope(), host="other")) == "http://other/p"


@pytest.mark.parametrize(
    ("server", "scheme", "expected"),
    [
        (("10.0.0.1", 80), "http", "http://10.0.0.1/p"),
        (("10.0.0.1", 8080), "http", "http://10.0.0.1:8080/p"),
        (("10.0.0.1", 443), "https", "https://10.0.0.1/p"),
        (("10.0.0.1", 80), "https", "https://10.0.0.1:80/p"),
        (("h", None), "http", "http://h/p"),
        (None, "http", "http://localhost/p"),
    ],
)
def test_url_from_scope_without_host_header(
    server: tuple[str, int | None] | None, scheme: str, expected: str
) -> None:
    scope = _scope(headers=[], server=server, scheme=scheme)
    assert str(URL.from_scope(scope)) == expected


@pytest.mark.parametrize(
    ("root_path", "path", "expected"),
    [
        ("/api", "/api/p", "http://example.com/api/p"),  # uvicorn, mounts: root inside path
        ("/api", "/api", "http://example.com/api"),
        ("/api", "/p", "http://example.com/api/p"),  # older servers: root outside path
        ("/api", "/apix", "http://example.com/api/apix"),  # a prefix, not a segment
        ("", "/p", "http://example.com/p"),
    ],
)
def test_url_from_scope_root_path_counted_once(root_path: str, path: str, expected: str) -> None:
    assert str(URL.from_scope(_scope(root_path=root_path, path=path))) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a b", "/a%20b"),
        ("/100%", "/100%25"),  # the decoded path had %25: it must not become an escape
        ("/a%41", "/a%2541"),
        ("/q?x", "/q%3Fx"),
        ("/h#x", "/h%23x"),
        ("/é", "/%C3%A9"),
        ("/a:b@c;d=e,f+g!$&'()*~", "/a:b@c;d=e,f+g!$&'()*~"),
    ],
)
def test_url_from_scope_quotes_the_decoded_path(path: str, expected: str) -> None:
    url = URL.from_scope(_scope(path=path))
    assert url.path == expected


# --- State ----------------------------------------------------------------------------------


def test_state_attributes() -> None:
    state = State({"a": 1})
    state.b = 2
    assert state.a == 1
    assert state.b == 2
    assert "a" in state and "zz" not in state
    assert state.get("a") == 1
    assert state.get("zz") is None
    assert state.get("zz", 5) == 5
    del state.a
    assert "a" not in state
    assert repr(state) == "State({'b': 2})"


def test_state_missing_attribute_names_it() -> None:
    state = State()
    with pytest.raises(AttributeError, match="state has no attribute 'user'"):
        _ = state.user
    with pytest.raises(AttributeError, match="state has no attribute 'user'"):
        del state.user
    assert getattr(state, "user", None) is None
    assert not hasattr(state, "user")


def test_state_initial_mapping_is_copied() -> None:
    initial = {"a": 1}
    state = State(initial)
    state.a = 2
    assert initial == {"a": 1}


def test_state_wrap_shares_the_dict() -> None:
    data: dict[str, object] = {}
    state = State._wrap(data)
    state.user = "ann"
    assert data == {"user": "ann"}


def test_state_copy_deepcopy_and_pickle() -> None:
    state = State({"items": [1]})
    shallow = copy.copy(state)
    shallow.extra = True
    assert "extra" not in state
    assert shallow.items is state.items
    deep = copy.deepcopy(state)
    deep.items.append(2)
    assert state.items == [1]
    assert pickle.loads(pickle.dumps(state)).items == [1]


def test_state_dunder_lookups_do_not_reach_the_values() -> None:
    state = State({"__html__": "no"})
    assert not hasattr(state, "__html__")
    assert not hasattr(state, "__fspath__")
