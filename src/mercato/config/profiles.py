"""The profiles (``MERCATO_ENV``): the configuration matrix of the pipeline's environments."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Profile(StrEnum):
    DEV = "dev"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


# The configuration matrix of the multi-environment pipeline (docs/deployment.md). A value
# here replaces the field default for that profile; a variable or file still overrides it.
# What a developer's machine and the test suite share: quick shutdown, every feature, and
# webhook receivers on local addresses.
_LOCAL: dict[str, Any] = {
    "log_format": "console",
    "shutdown_drain_s": 0.0,
    "shutdown_grace_s": 10.0,
    "feature_api_docs": True,
    "feature_discount_codes": True,
    "webhook_private_addresses": True,
}

PROFILES: dict[Profile, dict[str, Any]] = {
    Profile.DEV: {"debug": True, "log_level": "DEBUG", **_LOCAL},
    Profile.TEST: {"debug": False, "log_level": "INFO", **_LOCAL},
    Profile.STAGING: {
        "debug": False,
        "log_level": "INFO",
        "log_format": "json",
        "host": "0.0.0.0",  # in a container the pod network is the boundary
        "metrics_port": 9100,  # metrics are never served on the public API port
        "shutdown_drain_s": 5.0,
        "shutdown_grace_s": 20.0,
        "feature_api_docs": True,
        "feature_discount_codes": True,
    },
    Profile.PRODUCTION: {
        "debug": False,
        "log_level": "WARNING",
        "log_format": "json",
        "host": "0.0.0.0",
        "metrics_port": 9100,
        "shutdown_drain_s": 5.0,
        "shutdown_grace_s": 20.0,
        "feature_api_docs": False,
        "feature_discount_codes": True,
    },
}

# Settings a profile cannot do without: they must come from a variable, a file or an argument.
REQUIRED: dict[Profile, tuple[str, ...]] = {
    Profile.STAGING: ("database_url", "token_secret"),
    Profile.PRODUCTION: ("database_url", "token_secret"),
}
