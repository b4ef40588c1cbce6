"""Search's pure parts: reading a query, trigram similarity, fusing rankings, cursors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mercato.catalog.domain.search import (
    MAX_DEPTH,
    MAX_TERMS,
    FuzzyMatcher,
    Signal,
    decode_offset,
    encode_offset,
    fuse,
    fuzzy_score,
    parse_query,
)
from mercato.catalog.store.search_sql import fts5_grams, fts5_words
from mercato.kernel.errors import InvalidValue


def test_a_query_keeps_its_words_lower_cased_without_stop_words_or_repeats() -> None:
    query = parse_query("  Something to keep COFFEE warm, on the go: coffee!  ")
    assert query.terms == ("keep", "coffee", "warm", "go")
    assert query.sku is None
    assert parse_query("the of and").empty


def test_a_query_shaped_like_a_sku_names_it_upper_cased() -> None:
    assert parse_query("mug-blue").sku == "MUG-BLUE"
    assert parse_query("mug-blue").terms == ("mug", "blue")


def test_a_long_query_keeps_its_first_terms() -> None:
    query = parse_query(" ".join(f"w{i}" for i in range(50)))
    assert len(query.terms) == MAX_TERMS


def test_trigram_similarity_forgives_a_typo_but_not_a_different_word() -> None:
    assert fuzzy_score(["hedphones"], "Wireless headphones") > 0.6
    assert fuzzy_score(["headphones"], "Wireless headphones") == 1.0
    assert fuzzy_score(["zzqxv"], "Wireless headphones") == 0.0
    assert fuzzy_score(["kettle", "hedphones"], "Wireless headphones") < 0.6


def test_fusion_rewards_agreement_and_puts_the_exact_sku_first() -> None:
    hits = fuse(
        {Signal.WORDS: ["a", "b", "c"], Signal.SEMANTIC: ["b", "c", "d"]},
        exact=["d"],
    )
    assert [h.product_id for h in hits] == ["d", "b", "c", "a"]
    assert hits[0].signals == [Signal.SKU, Signal.SEMANTIC]
    assert hits[1].signals == [Signal.WORDS, Signal.SEMANTIC]


@given(st.integers(min_value=0, max_value=MAX_DEPTH - 1))
def test_a_cursor_carries_its_offset(offset: int) -> None:
    assert decode_offset(encode_offset(offset)) == offset


@pytest.mark.parametrize("cursor", ["garbage", "b-1", encode_offset(MAX_DEPTH), "==", "\u00e9"])
def test_a_cursor_the_server_did_not_make_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        decode_offset(cursor)
    assert refused.value.code == "invalid_cursor"


def test_typos_are_looked_for_in_short_queries_only() -> None:
    assert parse_query("hedphones").fuzzy
    assert parse_query("wireles noise cancelling hedphones").fuzzy is False
    assert parse_query("the best of wireless hedphones").fuzzy  # stop-words are not terms
    assert parse_query("the of").fuzzy is False


def test_meaning_outweighs_one_stray_word() -> None:
    """A product found by meaning alone, second, outranks one a single word matched, first."""
    hits = fuse({Signal.WORDS: ["word"], Signal.SEMANTIC: ["other", "meant"]})
    assert [h.product_id for h in hits] == ["other", "meant", "word"]


def test_one_matcher_scores_many_texts_as_each_alone() -> None:
    """The matcher remembers words across texts; no text's score may depend on another's."""
    names = ["Wireless headphones", "Headphone stand", "Kettle", "Travel kettle headphones", ""]
    terms = ["hedphones", "ketle"]
    matcher = FuzzyMatcher(terms)
    for _ in range(2):
        assert [matcher.score(n) for n in names] == [fuzzy_score(terms, n) for n in names]
    assert matcher.score("Travel kettle headphones") > matcher.score("Wireless headphones") > 0
    assert FuzzyMatcher([]).score("Kettle") == 0.0


def test_sqlite_looks_for_typos_by_four_letters_of_a_long_term_and_three_of_a_short_one() -> None:
    assert fts5_grams(("hedphones",)) == " OR ".join(
        f'"{g}"' for g in ("hedp", "edph", "dpho", "phon", "hone", "ones")
    )
    assert fts5_grams(("jigs", "mug")) == '"jig" OR "igs" OR "mug"'
    assert fts5_grams(("go",)) is None


def test_sqlite_asks_for_each_term_as_a_word_and_as_a_prefix() -> None:
    assert fts5_words(("kettle", "mug")) == '"kettle" OR "kettle"* OR "mug" OR "mug"*'
