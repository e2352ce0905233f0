"""The one error type a user can cause. Services raise it; views show its message, the API answers 4xx with it."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A request the user can fix: a wrong id, a stale form, a malformed file. Never a 500."""

    status_code = 400

    def __init__(self, message: str, *, code: str = "invalid", extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra or {}


class NotFoundError(ApplicationError):
    status_code = 404

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message, code="not_found", extra=extra)


class ConflictError(ApplicationError):
    """Someone else changed the object since the user loaded it (optimistic concurrency)."""

    status_code = 409

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message, code="conflict", extra=extra)
