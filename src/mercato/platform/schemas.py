"""Pydantic models shared by every module's API."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from mercato.kernel.money import CURRENCIES, MAX_AMOUNT, Money
from mercato.kernel.values import (
    LINE_FORBIDDEN,
    TEXT_FORBIDDEN,
    describe_character,
    forbidden_character,
)


def _line(value: str) -> str:
    return _refuse_forbidden(value, multiline=False)


def _multiline(value: str) -> str:
    return _refuse_forbidden(value, multiline=True)


def _refuse_forbidden(value: str, *, multiline: bool) -> str:
    bad = forbidden_character(value, multiline=multiline)
    if bad is not None:
        raise PydanticCustomError(
            "invalid_text",
            "Text must not contain control characters (found {character})",
            {"character": describe_character(bad)},
        )
    return value


LINE_PATTERN = f"^[^{LINE_FORBIDDEN}]*$"
MULTILINE_PATTERN = f"^[^{TEXT_FORBIDDEN}]*$"
NOT_BLANK = f"^[^{LINE_FORBIDDEN}]*[^\\s{LINE_FORBIDDEN}][^{LINE_FORBIDDEN}]*$"
"""The OpenAPI pattern of a field the domain trims and requires: a character other than space."""


class _Pattern:
    """States a pattern in the JSON schema (unless the field states its own) without checking
    it: the validator beside it checks, and answers with its own error."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.setdefault("pattern", self.pattern)
        return schema


CURRENCY_SCHEMA = {"enum": list(CURRENCIES)}
"""How the OpenAPI document states a currency: one of the codes the kernel accepts (a 422
``invalid_currency`` otherwise, from the kernel, the one check)."""


def _whole(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


WHOLE = BeforeValidator(_whole)
"""Put after ``Field(strict=True)`` on an integer: JSON Schema's ``integer`` includes ``11.0``,
so a whole number sent with a decimal point is taken; ``11.5``, ``"11"`` and ``true`` are not."""

Text = Annotated[str, AfterValidator(_line), _Pattern(LINE_PATTERN)]
"""Single-line text from a client: :func:`mercato.kernel.values.forbidden_character` refuses
control characters (NUL, tab, line breaks, ...) with a 422 naming the field. Every text field
of every request model, query and path parameter is of this type (or :data:`MultilineText`)."""

MultilineText = Annotated[str, AfterValidator(_multiline), _Pattern(MULTILINE_PATTERN)]
"""Text that may span lines (a description): tabs and line breaks allowed, other controls not."""


class MoneyModel(BaseModel):
    """An amount in minor units (cents) of an ISO 4217 currency."""

    model_config = ConfigDict(extra="forbid")
    amount: Annotated[int, Field(ge=0, le=MAX_AMOUNT, examples=[1999], strict=True), WHOLE]
    currency: Annotated[
        Text,
        Field(min_length=3, max_length=3, examples=["EUR"], json_schema_extra=CURRENCY_SCHEMA),
    ]

    @classmethod
    def of(cls, money: Money) -> MoneyModel:
        return cls(amount=money.amount, currency=money.currency)
