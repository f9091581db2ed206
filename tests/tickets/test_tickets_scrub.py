"""Scrubbing: secret names, secret values in free text, bounds."""

from __future__ import annotations

import base64
import re
import time

import pytest

from trellis.contrib.tickets import SCRUBBED, Scrubber
from trellis.contrib.tickets.scrub import MAX_VALUES


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "X-API-Key",
        "x-csrf-token",
        "Cookie",
        "set-cookie",
        "password",
        "new_password",
        "passwd",
        "pwd",
        "client_secret",
        "api_key",
        "apiKey",
        "access_token",
        "sessionid",
        "csrftoken",
        "X-Auth-Thing",
        "credentials",
        "signature",
    ],
)
def test_secret_names(name: str) -> None:
    assert Scrubber().is_secret(name)
    assert Scrubber().is_secret_header(name)


def test_the_always_secret_headers_stay_secret_with_any_pattern() -> None:
    scrubber = Scrubber()
    scrubber.pattern = re.compile("nothing-matches-this")
    for name in ("Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-API-Key"):
        assert scrubber.is_secret_header(name)
    assert not scrubber.is_secret("password")


@pytest.mark.parametrize("name", ["email", "page", "user-agent", "accept", "title", "q"])
def test_ordinary_names(name: str) -> None:
    assert not Scrubber().is_secret(name)
    assert not Scrubber().is_secret_header(name)


def test_more_patterns() -> None:
    scrubber = Scrubber(names=[r"^pin$", "iban"])
    assert scrubber.is_secret("PIN") and scrubber.is_secret("payer_iban")
    assert not scrubber.is_secret("spinner")
    assert scrubber.is_secret("token")  # the defaults stay


def test_secret_values_are_replaced_everywhere_in_text() -> None:
    secrets = Scrubber().secrets()
    secrets.add("hunter2 pw")
    secrets.add("abc")  # too short to search for in text
    secrets.add(["list-secret", {"deep": "dict-secret"}])
    secrets.add(12345678)
    text = (
        "login hunter2 pw, 'hunter2 pw', hunter2%20pw, hunter2+pw; abc; list-secret"
        " dict-secret 12345678"
    )
    assert secrets.text(text) == (
        f"login {SCRUBBED}, '{SCRUBBED}', {SCRUBBED}, {SCRUBBED}; abc; {SCRUBBED}"
        f" {SCRUBBED} {SCRUBBED}"
    )


def test_authorization_values() -> None:
    secrets = Scrubber().secrets()
    basic = base64.b64encode(b"ann:open-sesame").decode()
    secrets.add_authorization(f"Basic {basic}")
    secrets.add_authorization("Bearer tok-123456")
    secrets.add_authorization("Basic not*base64")
    text = f"{basic} open-sesame tok-123456 not*base64"
    assert secrets.text(text) == " ".join([SCRUBBED] * 4)


def test_pairs_and_url_passwords_in_text() -> None:
    secrets = Scrubber().secrets()
    text = (
        "GET https://api.example.com/v1?api_key=AK-1&page=2 failed;"
        " User(id=1, password_hash='h$1', name='ann') connect postgresql://app:pg-pw@db/app"
        ' token="a b" monkey=banana'
    )
    assert secrets.text(text) == (
        f"GET https://api.example.com/v1?api_key={SCRUBBED}&page=2 failed;"
        f" User(id=1, password_hash={SCRUBBED}, name='ann') connect"
        f" postgresql://app:{SCRUBBED}@db/app token={SCRUBBED} monkey={SCRUBBED}"
    )


def test_scrubbing_by_name_bounds_structures() -> None:
    secrets = Scrubber().secrets()
    value = {
        "user": {"name": "ann", "password": "pw-nested-1", "tokens": ["t-1", "t-2"]},
        "items": list(range(150)),
        "text": "x" * 5000,
        "obj": object(),
        "deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}},
    }
    out = secrets.by_name(value)
    assert out["user"] == {"name": "ann", "password": SCRUBBED, "tokens": SCRUBBED}
    assert len(out["items"]) == 101 and out["items"][-1] == "… 50 more"
    assert len(out["text"]) == 2001
    assert out["obj"] == "<object>"
    assert "…" in str(out["deep"])
    assert secrets.text("pw-nested-1") == SCRUBBED  # remembered for the text pass
    assert secrets.deep({"k": ["pw-nested-1", 3]}) == {"k": [SCRUBBED, 3]}


def test_the_number_of_values_is_bounded() -> None:
    secrets = Scrubber().secrets()
    for n in range(MAX_VALUES * 3):
        secrets.add(f"value-{n:06d}")
    assert len(secrets.values) <= MAX_VALUES * 4 + 3


@pytest.mark.parametrize(
    "text",
    ["m" * 64_000, "a='" * 21_000, "a=" * 32_000, "x://u:" * 10_000, "key='" + "v" * 60_000],
)
def test_text_scrubbing_stays_fast_on_hostile_text(text: str) -> None:
    secrets = Scrubber().secrets()
    for n in range(MAX_VALUES):
        secrets.add(f"value-{n:06d}")
    started = time.perf_counter()
    secrets.text(text)
    assert time.perf_counter() - started < 1.0
