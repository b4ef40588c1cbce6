from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.signal import Signal

if TYPE_CHECKING:
    from ..models.product_read import ProductRead


T = TypeVar("T", bound="SearchHit")


@_attrs_define
class SearchHit:
    """
    Attributes:
        product (ProductRead):
        score (float): Higher is better; comparable within one answer only
        signals (list[Signal]): What matched: the exact SKU, words, trigrams (typos and partial words), meaning
            (semantic)
    """

    product: ProductRead
    score: float
    signals: list[Signal]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        product = self.product.to_dict()

        score = self.score

        signals = []
        for signals_item_data in self.signals:
            signals_item = signals_item_data.value
            signals.append(signals_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "product": product,
                "score": score,
                "signals": signals,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.product_read import ProductRead  # noqa: PLC0415

        d = dict(src_dict)
        product = ProductRead.from_dict(d.pop("product"))

        score = d.pop("score")

        signals = []
        _signals = d.pop("signals")
        for signals_item_data in _signals:
            signals_item = Signal(signals_item_data)

            signals.append(signals_item)

        search_hit = cls(
            product=product,
            score=score,
            signals=signals,
        )

        search_hit.additional_properties = d
        return search_hit

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
