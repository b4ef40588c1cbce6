"""The platform's own problem codes: the ``code`` of every problem the platform answers itself
(business modules have their own ``ErrorCode`` enums). Stable: clients match on them."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """A problem the platform answers, by its ``code``."""

    # the request itself
    BAD_REQUEST = "bad_request"
    MALFORMED_JSON = "malformed_json"
    VALIDATION_FAILED = "validation_failed"
    INVALID_TEXT = "invalid_text"
    VALUE_OUT_OF_RANGE = "value_out_of_range"
    BODY_TOO_LARGE = "body_too_large"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    CONFLICT = "conflict"
    ERROR = "error"  # an HTTP error of a status without a code of its own
    # headers and parameters the platform reads
    INVALID_IF_MATCH = "invalid_if_match"
    INVALID_IF_NONE_MATCH = "invalid_if_none_match"
    INVALID_LAST_EVENT_ID = "invalid_last_event_id"
    INVALID_CURSOR = "invalid_cursor"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"
    # who is calling
    UNAUTHENTICATED = "unauthenticated"
    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"
    UNKNOWN_ACCOUNT = "unknown_account"
    ACCOUNT_INACTIVE = "account_inactive"
    ROLE_CHANGED = "role_changed"
    FORBIDDEN = "forbidden"
    STAFF_ONLY = "staff_only"
    # come back later
    TOO_MANY_REQUESTS = "too_many_requests"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    TOO_MANY_WAITING = "too_many_waiting"
    UNAVAILABLE = "unavailable"
    STARTING = "starting"
    SHUTTING_DOWN = "shutting_down"
    SWITCHED_OFF = "switched_off"
    DATABASE_UNAVAILABLE = "database_unavailable"
    RETRY_LATER = "retry_later"
    INJECTED_FAULT = "injected_fault"
    INTERNAL_ERROR = "internal_error"
