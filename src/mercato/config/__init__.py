"""mercato's settings: every ``MERCATO_*`` variable, in groups, with profiles and checks."""

from mercato.config.groups import (
    DEFAULT_SECRET,
    STRIPE_API_BASE,
    Feature,
    PaymentProviderName,
)
from mercato.config.profiles import PROFILES, REQUIRED, Profile
from mercato.config.settings import STRIPE_MIN_CHECKOUT_GRACE_S, Described, Settings, explain
from mercato.config.sources import ConfigurationError, Source, env_name

__all__ = [
    "DEFAULT_SECRET",
    "PROFILES",
    "REQUIRED",
    "STRIPE_API_BASE",
    "STRIPE_MIN_CHECKOUT_GRACE_S",
    "ConfigurationError",
    "Described",
    "Feature",
    "PaymentProviderName",
    "Profile",
    "Settings",
    "Source",
    "env_name",
    "explain",
]
