"""``mercato demo-data --catalog N``: a realistic catalog of N products, the same for a seed.

Kinds of product come from ``demo_catalog.toml`` (categories, the words names are made of,
what descriptions say products are for, price ranges). Product ``i`` of a seed is always the
same product, SKU ``<category>-<kind>-<i>`` included, so loading is idempotent (SKUs that exist
are skipped) and the search judgments (bench/search_judgments.toml) name products by kind.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

DEFAULT_SEED = 15
BATCH = 500


@dataclass(frozen=True, slots=True)
class Kind:
    category: str
    category_name: str
    code: str
    noun: str
    adjectives: tuple[str, ...]
    materials: tuple[str, ...]
    sizes: tuple[str, ...]
    uses: tuple[str, ...]
    also: tuple[str, ...]
    price: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Vocabulary:
    brands: tuple[str, ...]
    colours: tuple[str, ...]
    kinds: tuple[Kind, ...]


def _frozen(table: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}


@cache
def vocabulary() -> Vocabulary:
    """The demo catalog's words (``demo_catalog.toml``)."""
    text = resources.files("mercato.cli").joinpath("demo_catalog.toml").read_text("utf-8")
    data = tomllib.loads(text)
    kinds = tuple(
        Kind(
            category=category["code"],
            category_name=category["name"],
            **_frozen(kind),
        )
        for category in data["category"]
        for kind in category["kinds"]
    )
    return Vocabulary(tuple(data["brands"]), tuple(data["colours"]), kinds)


def _title(words: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in words.split())


def product(seed: int, index: int) -> dict[str, Any]:
    """Product ``index`` of the catalog of ``seed``: what ``create_product`` takes."""
    words = vocabulary()
    rng = random.Random(f"{seed}:{index}")
    kind = words.kinds[index % len(words.kinds)]
    brand, colour = rng.choice(words.brands), rng.choice(words.colours)
    adjective, material = rng.choice(kind.adjectives), rng.choice(kind.materials)
    size = rng.choice(kind.sizes)
    uses = rng.sample(kind.uses, k=2)
    low, high = kind.price
    description = (
        f"{adjective.capitalize()} {kind.noun} in {material}, {colour}. "
        f"{uses[0].capitalize()}; {uses[1]}. "
        f"Size: {size}. Material: {material}. Colour: {colour}. Category: {kind.category_name}."
    )
    return {
        "sku": f"{kind.category}-{kind.code}-{index:06d}",
        "name": f"{brand} {_title(adjective)} {_title(kind.noun)} {size}, {_title(colour)}",
        "description": description,
        "price_amount": rng.randrange(low, high, 10) + 9,
        "currency": "EUR",
        "weight_grams": rng.randrange(50, 5000, 10),
        "initial_stock": 0 if rng.random() < 0.1 else rng.randrange(1, 200),
    }


def kind_of(sku: str) -> str:
    """The ``<category>-<kind>`` a demo SKU was made for."""
    return sku.rsplit("-", 1)[0]


def batches(count: int, *, seed: int = DEFAULT_SEED) -> Iterator[list[dict[str, Any]]]:
    """The catalog's products in batches of at most BATCH."""
    for start in range(0, count, BATCH):
        yield [product(seed, i) for i in range(start, min(count, start + BATCH))]
