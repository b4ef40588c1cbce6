"""Contains all the data models used in inputs/outputs"""

from .address_model import AddressModel
from .addresses_update import AddressesUpdate
from .adjustment_page import AdjustmentPage
from .adjustment_read import AdjustmentRead
from .attempt_read import AttemptRead
from .cancel_order import CancelOrder
from .customer_create import CustomerCreate
from .customer_page import CustomerPage
from .customer_read import CustomerRead
from .delivery_detail import DeliveryDetail
from .delivery_page import DeliveryPage
from .delivery_read import DeliveryRead
from .discount_update import DiscountUpdate
from .endpoint_create import EndpointCreate
from .endpoint_created import EndpointCreated
from .endpoint_page import EndpointPage
from .endpoint_read import EndpointRead
from .endpoint_update import EndpointUpdate
from .field_error import FieldError
from .field_error_in import FieldErrorIn
from .follow_all_orders_type_item import FollowAllOrdersTypeItem
from .line_create import LineCreate
from .line_read import LineRead
from .money_model import MoneyModel
from .money_model_currency import MoneyModelCurrency
from .order_create import OrderCreate
from .order_create_currency import OrderCreateCurrency
from .order_page import OrderPage
from .order_read import OrderRead
from .payment_read import PaymentRead
from .place_order_type_0 import PlaceOrderType0
from .place_order_type_1 import PlaceOrderType1
from .problem import Problem
from .product_create import ProductCreate
from .product_page import ProductPage
from .product_read import ProductRead
from .product_staff_read import ProductStaffRead
from .product_update import ProductUpdate
from .quantity_update import QuantityUpdate
from .search_hit import SearchHit
from .search_results import SearchResults
from .ship_order import ShipOrder
from .signal import Signal
from .status import Status
from .stock_adjustment_create import StockAdjustmentCreate
from .switch import Switch
from .switch_read import SwitchRead
from .switch_update import SwitchUpdate
from .token_create import TokenCreate
from .token_read import TokenRead
from .totals_read import TotalsRead

__all__ = (
    "AddressesUpdate",
    "AddressModel",
    "AdjustmentPage",
    "AdjustmentRead",
    "AttemptRead",
    "CancelOrder",
    "CustomerCreate",
    "CustomerPage",
    "CustomerRead",
    "DeliveryDetail",
    "DeliveryPage",
    "DeliveryRead",
    "DiscountUpdate",
    "EndpointCreate",
    "EndpointCreated",
    "EndpointPage",
    "EndpointRead",
    "EndpointUpdate",
    "FieldError",
    "FieldErrorIn",
    "FollowAllOrdersTypeItem",
    "LineCreate",
    "LineRead",
    "MoneyModel",
    "MoneyModelCurrency",
    "OrderCreate",
    "OrderCreateCurrency",
    "OrderPage",
    "OrderRead",
    "PaymentRead",
    "PlaceOrderType0",
    "PlaceOrderType1",
    "Problem",
    "ProductCreate",
    "ProductPage",
    "ProductRead",
    "ProductStaffRead",
    "ProductUpdate",
    "QuantityUpdate",
    "SearchHit",
    "SearchResults",
    "ShipOrder",
    "Signal",
    "Status",
    "StockAdjustmentCreate",
    "Switch",
    "SwitchRead",
    "SwitchUpdate",
    "TokenCreate",
    "TokenRead",
    "TotalsRead",
)
