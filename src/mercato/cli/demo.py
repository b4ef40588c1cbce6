"""Demo data: a staff account, a demo customer and fifty products with stock.

Loading is idempotent: accounts and SKUs that already exist are left as they are, so
``make run`` can load it every time.
"""

from __future__ import annotations

import itertools
import sys

from mercato.bootstrap import Container, build
from mercato.catalog import Product
from mercato.catalog.domain import SkuTaken
from mercato.cli import catalog
from mercato.config import Settings
from mercato.customers import Role
from mercato.customers.domain import EmailTaken

STAFF_EMAIL = "staff@mercato.example"
STAFF_PASSWORD = "staff-demo-password"
CUSTOMER_EMAIL = "customer@mercato.example"
CUSTOMER_PASSWORD = "customer-demo-password"

_KINDS = [
    ("MUG", "Mug", 1290, 350),
    ("TEE", "T-shirt", 2490, 200),
    ("CAP", "Cap", 1990, 120),
    ("BAG", "Tote bag", 1590, 150),
    ("BTL", "Water bottle", 2290, 300),
    ("NBK", "Notebook", 990, 250),
    ("PEN", "Pen set", 790, 80),
    ("SCK", "Socks", 1190, 90),
    ("HDY", "Hoodie", 5490, 600),
    ("PST", "Poster", 1490, 100),
]
_COLOURS = ["Black", "White", "Blue", "Green", "Red"]


def demo_products() -> list[dict[str, object]]:
    """Fifty products: ten kinds in five colours, with prices, weights and stock."""
    products = []
    for i, ((code, kind, price, grams), colour) in enumerate(itertools.product(_KINDS, _COLOURS)):
        products.append(
            {
                "sku": f"{code}-{colour.upper()}",
                "name": f"{colour} {kind.lower()}" if i % 5 else f"{colour} {kind}",
                "description": f"A {colour.lower()} {kind.lower()} from the mercato demo shop.",
                "price_amount": price + 100 * (i % 3),
                "currency": "EUR",
                "weight_grams": grams,
                "initial_stock": 20 + (i * 7) % 80,
            }
        )
    return products


async def create_staff(settings: Settings, *, email: str, name: str, password: str) -> str:
    """Create a staff account and return its id."""
    container = build(settings)
    try:
        await container.start(workers=False)
        staff = await container.customers.register(
            email=email, password=password, name=name, role=Role.STAFF
        )
        return staff.id
    finally:
        await container.stop()


async def load_demo_data(settings: Settings, *, catalog: int = 0, seed: int = 15) -> str:
    """Create what is missing of the demo data, and of a generated catalog of ``catalog``
    products; returns a one-line report."""
    container = build(settings)
    created = {"accounts": 0, "products": 0}
    try:
        await container.start(workers=False)
        staff_id = await _accounts(container, created)
        await _products(container, staff_id or "demo", created)
        created["products"] += await _catalog(container, staff_id or "demo", catalog, seed)
    finally:
        await container.stop()
    return (
        f"demo data: {created['accounts']} accounts and {created['products']} products created "
        f"(staff {STAFF_EMAIL} / {STAFF_PASSWORD}, customer {CUSTOMER_EMAIL} / {CUSTOMER_PASSWORD})"
    )


async def _accounts(container: Container, created: dict[str, int]) -> str:
    staff_id = ""
    for email, password, name, role in (
        (STAFF_EMAIL, STAFF_PASSWORD, "Demo Staff", Role.STAFF),
        (CUSTOMER_EMAIL, CUSTOMER_PASSWORD, "Demo Customer", Role.CUSTOMER),
    ):
        try:
            account = await container.customers.register(
                email=email, password=password, name=name, role=role
            )
            created["accounts"] += 1
            staff_id = staff_id or account.id
        except EmailTaken:
            pass
    return staff_id


async def _products(container: Container, staff_id: str, created: dict[str, int]) -> None:
    for spec in demo_products():
        try:
            product: Product = await container.catalog.create_product(
                actor_id=staff_id,
                **spec,  # type: ignore[arg-type]
            )
            created["products"] += bool(product)
        except SkuTaken:
            pass


async def _catalog(container: Container, staff_id: str, count: int, seed: int) -> int:
    """Load the generated catalog in batches, one unit of work each; how many were new."""
    added = 0
    for number, batch in enumerate(catalog.batches(count, seed=seed), start=1):
        added += await container.catalog.import_products(batch, actor_id=staff_id)
        if count > catalog.BATCH:
            print(f"catalog: {min(count, number * catalog.BATCH)} of {count}", file=sys.stderr)
    return added
