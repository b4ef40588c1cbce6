"""Catalog: products, their creation and editing, stock adjustments and the audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from mercato.catalog import CatalogService, Product, ProductChanges
from mercato.console.views import (
    FormSession,
    StaffSession,
    amount_text,
    errors_of,
    parent,
    parse_int,
    parse_money,
    render,
)
from mercato.kernel.errors import Conflict, DomainError, NotFound
from mercato.platform.pagination import decode_cursor
from mercato.platform.schemas import Text

router = APIRouter()
PAGE = 25
ProductId = Annotated[Text, Path(max_length=36)]
LongText = Annotated[str, Form(max_length=5000)]


@router.get("/products")
async def list_products(
    request: Request,
    session: StaffSession,
    q: Annotated[Text, Query(max_length=200)] = "",
    after: Annotated[Text | None, Query(max_length=200)] = None,
) -> Response:
    """Products whose name or SKU contains the search text, inactive ones included."""
    page = await parent(request).catalog.list_products(
        text=q.strip() or None, after=decode_cursor(after), limit=PAGE, include_inactive=True
    )
    return render(
        request, "products.html", session=session, products=page.items, next=page.next_cursor, q=q
    )


def _form_of(product: Product | None) -> dict[str, str]:
    if product is None:
        return {"currency": "", "weight_grams": "0", "initial_stock": "0"}
    return {
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price": amount_text(product.price),
        "currency": product.price.currency,
        "weight_grams": str(product.weight_grams),
        "active": "on" if product.active else "",
        "version": str(product.version),
    }


@router.get("/products/new")
async def new_product(request: Request, session: StaffSession) -> Response:
    """The form for a new product."""
    form = _form_of(None) | {"currency": parent(request).settings.currency}
    return render(request, "product_new.html", session=session, form=form, errors={})


@router.post("/products")
async def create_product(
    request: Request,
    session: FormSession,
    sku: Annotated[str, Form(max_length=64)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    description: LongText = "",
    price: Annotated[str, Form(max_length=20)] = "",
    currency: Annotated[str, Form(max_length=3)] = "",
    weight_grams: Annotated[str, Form(max_length=12)] = "0",
    initial_stock: Annotated[str, Form(max_length=12)] = "0",
) -> Response:
    """Add a product; every refusal is shown next to its field."""
    form = dict(locals_form(sku, name, description, price, currency, weight_grams, initial_stock))
    errors: dict[str, str] = {}
    cur = currency.strip().upper() or parent(request).settings.currency
    amount = parse_money(price, currency=cur, field="price", errors=errors)
    weight = parse_int(weight_grams, field="weight_grams", label="Weight", errors=errors)
    stock = parse_int(initial_stock, field="initial_stock", label="Opening stock", errors=errors)
    if not errors:
        try:
            product = await parent(request).catalog.create_product(
                actor_id=session.principal.user_id,
                sku=sku,
                name=name,
                description=description,
                price_amount=amount,
                currency=cur,
                weight_grams=weight,
                initial_stock=stock,
            )
        except DomainError as exc:
            errors = _opening_stock_errors(errors_of(exc))
        else:
            return RedirectResponse(f"/console/products/{product.id}", status_code=303)
    return render(
        request, "product_new.html", session=session, status=422, form=form, errors=errors
    )


def _opening_stock_errors(errors: dict[str, str]) -> dict[str, str]:
    """The opening stock's refusal (as the first stock adjustment, or by its own rule) in plain
    words next to its field; other errors as they are."""
    for key, word in (("delta", "Delta"), ("initial_stock", "Initial_stock")):
        if key in errors:
            return {"initial_stock": errors[key].replace(word, "Opening stock")}
    return errors


def locals_form(*values: str) -> zip[tuple[str, str]]:
    """The submitted fields of the new-product form, to show them again."""
    names = ("sku", "name", "description", "price", "currency", "weight_grams", "initial_stock")
    return zip(names, values, strict=True)


async def _page(
    request: Request, session: Any, product_id: str, *, status: int = 200, **extra: Any
) -> Response:
    catalog = parent(request).catalog
    product: Product = await catalog.get_product(product_id, include_inactive=True)
    trail = await catalog.adjustments(product_id, after=None, limit=100)
    return render(
        request,
        "product.html",
        session=session,
        status=status,
        product=product,
        adjustments=list(reversed(trail.items)),
        form=extra.pop("form", None) or _form_of(product),
        errors=extra.pop("errors", {}),
        stock_errors=extra.pop("stock_errors", {}),
        stock_form=extra.pop("stock_form", {"delta": "", "reason": ""}),
        **extra,
    )


@router.get("/products/{product_id}")
async def read_product(request: Request, session: StaffSession, product_id: ProductId) -> Response:
    """One product: its edit form, a stock adjustment form and the audit trail."""
    return await _page(request, session, product_id)


@router.post("/products/{product_id}")
async def edit_product(
    request: Request,
    session: FormSession,
    product_id: ProductId,
    name: Annotated[str, Form(max_length=200)] = "",
    description: LongText = "",
    price: Annotated[str, Form(max_length=20)] = "",
    weight_grams: Annotated[str, Form(max_length=12)] = "0",
    active: Annotated[str, Form(max_length=5)] = "",
    version: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """Save the product at the version the form showed."""
    catalog = parent(request).catalog
    current: Product = await catalog.get_product(product_id, include_inactive=True)
    errors: dict[str, str] = {}
    amount = parse_money(price, currency=current.price.currency, field="price", errors=errors)
    weight = parse_int(weight_grams, field="weight_grams", label="Weight", errors=errors)
    seen = parse_int(version, field="_", label="The page's version", errors=errors)
    form = _form_of(current) | {
        "name": name,
        "description": description,
        "price": price,
        "weight_grams": weight_grams,
        "active": active,
        "version": version,
    }
    if not errors:
        changes = ProductChanges(
            name=name,
            description=description,
            price_amount=amount,
            weight_grams=weight,
            active=active == "on",
        )
        errors = await _save(catalog, product_id, changes, seen)
        if not errors:
            return RedirectResponse(f"/console/products/{product_id}", status_code=303)
    return await _page(request, session, product_id, status=422, form=form, errors=errors)


async def _save(
    catalog: CatalogService, product_id: str, changes: ProductChanges, seen: int
) -> dict[str, str]:
    """Save the changes at the version the form showed; the form's errors, none if saved."""
    try:
        await catalog.update_product(product_id, changes, expected_version=seen)
    except NotFound:
        raise
    except DomainError as exc:
        return _changed_meanwhile() if isinstance(exc, Conflict) else errors_of(exc)
    return {}


def _changed_meanwhile() -> dict[str, str]:
    return {
        "_": "This product changed meanwhile. Nothing was saved: the form now shows the "
        "product as it is; make your change again."
    }


@router.post("/products/{product_id}/stock")
async def adjust_stock(
    request: Request,
    session: FormSession,
    product_id: ProductId,
    delta: Annotated[str, Form(max_length=12)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Add (positive) or remove (negative) available units, with a reason for the trail."""
    errors: dict[str, str] = {}
    units = parse_int(delta, field="delta", label="Change", errors=errors)
    if not errors:
        try:
            await parent(request).catalog.adjust_stock(
                product_id, delta=units, reason=reason, actor_id=session.principal.user_id
            )
        except NotFound:
            raise
        except DomainError as exc:
            errors = errors_of(exc)
            if "_" in errors:
                errors = {"delta": errors["_"]}
        else:
            return RedirectResponse(f"/console/products/{product_id}", status_code=303)
    stock_form = {"delta": delta, "reason": reason}
    return await _page(
        request, session, product_id, status=422, stock_errors=errors, stock_form=stock_form
    )
