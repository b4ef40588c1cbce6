"""Pydantic models shared by every module's API."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from mercato.kernel.money import MAX_AMOUNT, Money
from mercato.kernel.values import describe_character, forbidden_character


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


Text = Annotated[str, AfterValidator(_line)]
"""Single-line text from a client: :func:`mercato.kernel.values.forbidden_character` refuses
control characters (NUL, tab, line breaks, ...) with a 422 naming the field. Every text field
of every request model, query and path parameter is of this type (or :data:`MultilineText`)."""

MultilineText = Annotated[str, AfterValidator(_multiline)]
"""Text that may span lines (a description): tabs and line breaks allowed, other controls not."""


class MoneyModel(BaseModel):
    """An amount in minor units (cents) of an ISO 4217 currency."""

    model_config = ConfigDict(extra="forbid")
    amount: Annotated[int, Field(ge=0, le=MAX_AMOUNT, examples=[1999], strict=True)]
    currency: Annotated[Text, Field(min_length=3, max_length=3, examples=["EUR"])]

    @classmethod
    def of(cls, money: Money) -> MoneyModel:
        return cls(amount=money.amount, currency=money.currency)
