"""Accept-Language parsing and matching tags against the supported locales."""

from __future__ import annotations

import pytest

from trellis.contrib.i18n.negotiation import LocaleMatcher, parse_accept_language


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr", ["fr"]),
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", ["fr-CH", "fr", "en", "de", "*"]),
        ("en;q=0.2, fr;q=0.9", ["fr", "en"]),  # by weight, not by position
        ("de;q=0.5, fr;q=0.5, it", ["it", "de", "fr"]),  # equal weights keep their order
        ("fr;q=0, en", ["en"]),  # q=0: not acceptable
        ("fr;q=abc, en;q=2, de;q=-1, it", ["it"]),  # malformed weights are dropped
        ("fr ; q = 0.4 , , en", ["en", "fr"]),  # spaces and empty items
        ("", []),
        ("en;level=1;q=0.3, fr", ["fr", "en"]),  # other parameters are ignored
    ],
)
def test_parse_accept_language(header: str, expected: list[str]) -> None:
    assert parse_accept_language(header) == expected


def test_a_huge_header_is_cut() -> None:
    header = ",".join(["xx"] * 5000) + ",fr"
    assert parse_accept_language(header) == ["xx"] * 32


@pytest.fixture
def matcher() -> LocaleMatcher:
    return LocaleMatcher(["en", "fr", "pt_BR", "pt_PT", "zh_Hant"])


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("fr", "fr"),
        ("FR", "fr"),
        ("fr-CA", "fr"),  # region the app lacks: the language
        ("fr_BE", "fr"),
        ("pt-br", "pt_BR"),
        ("pt-PT", "pt_PT"),
        ("pt", "pt_BR"),  # a bare language: its first supported region
        ("pt-AO", "pt_BR"),
        ("zh-Hant", "zh_Hant"),
        ("de", None),
        ("", None),
    ],
)
def test_match(matcher: LocaleMatcher, tag: str, expected: str | None) -> None:
    assert matcher.match(tag) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de, fr-CA;q=0.8, en;q=0.5", "fr"),
        ("de, *", None),  # the wildcard is the default's business
        ("pt-PT;q=0.4, pt-BR;q=0.9", "pt_BR"),
        ("es, it", None),
        ("en-GB,en;q=0.9", "en"),
    ],
)
def test_negotiate(matcher: LocaleMatcher, header: str, expected: str | None) -> None:
    assert matcher.negotiate(header) == expected
    assert matcher.negotiate(header) == expected  # from the cache


def test_the_cache_stays_small(matcher: LocaleMatcher) -> None:
    for i in range(2000):
        matcher.negotiate(f"x{i}, fr")
    assert len(matcher._cache) <= 512
