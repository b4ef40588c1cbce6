"""Product search, the pure part: what a query asks for, how signals are scored and fused.

A query is cut into terms (lower-cased words, English stop-words dropped); the stores find
candidates by three signals — an exact SKU, full-text words (with prefixes) and trigrams (typos
and partial words) — and, where the embeddings are ready, by meaning. Each signal ranks its
candidates; reciprocal-rank fusion (Cormack et al., 2009) merges the rankings without having to
make their scores comparable, and an exact SKU always comes first.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from mercato.kernel.errors import InvalidValue

MAX_QUERY_LENGTH = 200
MAX_DEPTH = 200
"""How far down paging may go (a cursor's largest offset)."""
CANDIDATES = 60
"""How many candidates each signal ranks, and so how deep paging goes (at least this far; the
fused list of the signals' candidates holds up to three times as many). A shopper reads the
first page or two; fusion needs a signal's best few dozen, not its 200th (1/(60 + 200) next to
1/(60 + 1)), and every candidate costs the database a product read and Python a trigram
comparison. 200 until 2026-12-05; hybrid nDCG@10 with 50, 60, 100 and 200: 0.882, 0.886,
0.885, 0.884 (one synonym query moves: docs/search.md)."""
MAX_TERMS = 12
RRF_K = 60
"""Reciprocal-rank fusion's constant: 1 / (k + rank); 60 is the published default."""
SEMANTIC_THRESHOLD = 0.3
"""A product is near in meaning at this cosine similarity or more (MiniLM puts unrelated
texts at about 0 to 0.2): below it, a query about nothing in the catalog finds nothing.
Chosen before the relevance judgments were first run. 0.35 scored better on them, but lost
"something to keep coffee warm on the go" for a terse "Insulated travel flask. Double-walled
steel, 500 ml" (cosine 0.31): a shopper's intent weighs more than a query about nothing."""

FUZZY_THRESHOLD = 0.6
"""A term matches a word by trigrams when this share of its trigrams are the word's (as
pg_trgm's default ``word_similarity_threshold``)."""
FUZZY_MAX_TERMS = 3
"""Typos and partial words are looked for in queries of at most this many terms. A shopper's
typo comes in a short query ("hedphones"); a long descriptive one is matched by its words and
its meaning, and comparing its trigrams with every product's name costs a scan of them all."""

_STOP = """a about an and any are as at be but by can do does for from get has have how i if in
into is it its me my need no not of off on or our so some something than that the their them
then there these this those to too up us want was we what when where which while who why will
with without you your"""
STOP_WORDS = frozenset(_STOP.split())
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SKU_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class SearchError(StrEnum):
    INVALID_CURSOR = "invalid_cursor"
    INVALID_SEARCH = "invalid_search"


class Signal(StrEnum):
    """What made a product match, reported with each hit."""

    SKU = "sku"
    WORDS = "words"
    TRIGRAMS = "trigrams"
    SEMANTIC = "semantic"


WEIGHTS = {Signal.SKU: 1.0, Signal.WORDS: 1.0, Signal.TRIGRAMS: 0.75, Signal.SEMANTIC: 1.5}
"""Each signal's weight in the fusion. With equal weights a stray word on a wrong product
outranked the right product found by meaning alone; trigrams mostly find what the words found.
Chosen on the relevance judgments (docs/search.md): synonyms 0.65 -> 0.74 nDCG@10, no class
worse."""


class InvalidSearch(InvalidValue):
    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(SearchError.INVALID_SEARCH, message, field=field)


@dataclass(frozen=True, slots=True)
class Filters:
    """What every hit must satisfy; prices in minor units of the product's currency."""

    in_stock: bool = False
    min_price: int = 0
    max_price: int = 2**62

    def check(self) -> Filters:
        """These filters, or InvalidSearch when the price range is empty."""
        if self.min_price > self.max_price:
            raise InvalidSearch("min_price is above max_price", field="min_price")
        return self


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: its text, its terms, and the SKU it could be."""

    text: str
    terms: tuple[str, ...]
    sku: str | None

    @property
    def empty(self) -> bool:
        """Nothing to look for: only stop-words, punctuation or blanks."""
        return not self.terms and self.sku is None

    @property
    def fuzzy(self) -> bool:
        """Whether typos and partial words are looked for (by trigrams): in queries of at most
        FUZZY_MAX_TERMS terms."""
        return 0 < len(self.terms) <= FUZZY_MAX_TERMS


def parse_query(text: str) -> Query:
    """Terms of ``text``: lower-cased words without stop-words, at most MAX_TERMS."""
    text = " ".join(text.split())[:MAX_QUERY_LENGTH]
    words = [w.lower() for w in _WORD.findall(text)]
    terms = tuple(dict.fromkeys(w for w in words if w not in STOP_WORDS))[:MAX_TERMS]
    sku = text.upper() if _SKU_LIKE.match(text) else None
    return Query(text=text, terms=terms, sku=sku)


def names_every_term(terms: Sequence[str], name: str) -> bool:
    """Whether every term is the start of a word of ``name`` (any case). When all of a
    query's best words candidates are named so, the trigram candidates add nothing to them:
    typos and parts of words are looked for among the words candidates only."""
    words = _WORD.findall(name.lower())
    return all(any(w.startswith(term) for w in words) for term in terms)


@lru_cache(maxsize=65536)
def trigrams(word: str) -> frozenset[str]:
    """The trigrams of one word, padded as pg_trgm pads them (two blanks before, one after)."""
    padded = f"  {word} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def fuzzy_score(terms: Sequence[str], text: str) -> float:
    """How well ``text`` matches the terms by trigrams: the mean of the terms that match at
    FUZZY_THRESHOLD or better (0 when none does)."""
    return FuzzyMatcher(terms).score(text)


class FuzzyMatcher:
    """:func:`fuzzy_score` of one query's terms against many texts. Product names share most
    of their words, so each distinct word is compared with the terms once, not once a product,
    and the words like no term are then skipped."""

    __slots__ = ("_grams", "_seen")

    def __init__(self, terms: Sequence[str]) -> None:
        self._grams = [trigrams(t) for t in terms]
        self._seen: dict[str, tuple[float, ...] | None] = {}

    def _similarities(self, word: str) -> tuple[float, ...] | None:
        """Each term's similarity to ``word`` where it reaches FUZZY_THRESHOLD, else 0; None
        when no term's does."""
        if word in self._seen:
            return self._seen[word]
        theirs = trigrams(word)
        shares = [len(mine & theirs) / len(mine) for mine in self._grams]
        found = None
        if max(shares) >= FUZZY_THRESHOLD:
            found = tuple(s if s >= FUZZY_THRESHOLD else 0.0 for s in shares)
        self._seen[word] = found
        return found

    def score(self, text: str) -> float:
        """How well ``text`` matches the terms (as :func:`fuzzy_score`)."""
        if not self._grams:
            return 0.0
        best: list[float] | None = None
        for word in {w.lower() for w in _WORD.findall(text)}:
            found = self._similarities(word)
            if found is not None:
                best = list(found) if best is None else list(map(max, best, found))
        return sum(best) / len(self._grams) if best else 0.0


@dataclass(slots=True)
class Hit:
    """A product found, its fused score and the signals that found it."""

    product_id: str
    score: float = 0.0
    signals: list[Signal] = field(default_factory=list)


def fuse(rankings: Mapping[Signal, Sequence[str]], *, exact: Iterable[str] = ()) -> list[Hit]:
    """Weighted reciprocal-rank fusion of the rankings, best first; ``exact`` SKU matches
    lead."""
    hits: dict[str, Hit] = {}
    for signal, ranking in rankings.items():
        for rank, product_id in enumerate(ranking, start=1):
            hit = hits.setdefault(product_id, Hit(product_id))
            hit.score += WEIGHTS[signal] / (RRF_K + rank)
            hit.signals.append(signal)
    leading = []
    for product_id in exact:
        hit = hits.pop(product_id) if product_id in hits else Hit(product_id)
        hit.score += 1.0
        hit.signals.insert(0, Signal.SKU)
        leading.append(hit)
    rest = sorted(hits.values(), key=lambda h: (-h.score, h.product_id))
    return leading + rest


def encode_offset(offset: int) -> str:
    """An opaque cursor for the hits after the first ``offset``."""
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def decode_offset(cursor: str | None) -> int:
    """The offset a search cursor continues from; InvalidValue for anything else."""
    if not cursor:
        return 0
    try:
        value = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
    except (ValueError, UnicodeError):
        value = ""
    digits = value[1:]
    if not (value.startswith("o") and digits.isdigit() and int(digits) < MAX_DEPTH):
        raise InvalidValue(SearchError.INVALID_CURSOR, "the cursor is not valid", field="cursor")
    return int(digits)
