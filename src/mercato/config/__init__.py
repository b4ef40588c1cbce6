"""mercato's settings: every ``MERCATO_*`` variable, in groups, with profiles and checks."""

from mercato.config.groups import DEFAULT_SECRET, Feature, PaymentProviderName
from mercato.config.profiles import PROFILES, Profile
from mercato.config.settings import Settings, explain
from mercato.config.sources import ConfigurationError, Source

__all__ = [
    "DEFAULT_SECRET",
    "PROFILES",
    "ConfigurationError",
    "Feature",
    "PaymentProviderName",
    "Profile",
    "Settings",
    "Source",
    "explain",
]
