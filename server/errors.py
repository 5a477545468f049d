"""One exception hierarchy for every API.

::

    ServiceError                 500 InternalError
    ├── InvalidInput             400
    │   ├── InvalidRange         400
    │   └── UnsupportedFormat    400
    ├── InvalidAuthentication    401
    ├── PermissionDenied         403
    ├── NotFound                 404
    ├── Conflict                 409
    ├── PayloadTooLarge          413
    ├── RangeNotSatisfiable      416
    ├── TooManyRequests          429
    ├── ServiceUnavailable       503  (with Retry-After: the database is unreachable)
    └── DataChanged              503  (a registered file changed on disk)

The logic raises these; ``server.web.errors`` renders them in each API's own error
shape. ``error`` is the htsget error name, which the other APIs ignore.
"""

from __future__ import annotations


class ServiceError(Exception):
    status = 500
    error = "InternalError"

    def __init_subclass__(cls, status: int | None = None, **kwargs):
        """``class Kind(Parent, status=404)``: a kind declared here is named
        after its class (``error``); one declared elsewhere keeps its parent's
        ``error`` and, without ``status=``, its parent's status."""
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if cls.__module__ == __name__:
            cls.error = cls.__name__

    def __init__(self, message: str = "internal error", *, detail: dict | None = None):
        super().__init__(message)
        self.detail = detail or {}


class InvalidInput(ServiceError, status=400): ...


class InvalidRange(InvalidInput): ...


class UnsupportedFormat(InvalidInput): ...


class InvalidAuthentication(ServiceError, status=401): ...


class PermissionDenied(ServiceError, status=403): ...


class NotFound(ServiceError, status=404): ...


class Conflict(ServiceError, status=409): ...


class PayloadTooLarge(ServiceError, status=413): ...


class RangeNotSatisfiable(ServiceError, status=416): ...


class TooManyRequests(ServiceError, status=429): ...


class ServiceUnavailable(ServiceError, status=503):
    """A dependency (the database) is unreachable; the client should retry later."""

    retry_after = 5  # seconds, sent as the Retry-After header


class DataChanged(ServiceError, status=503):
    """A registered file no longer matches its registration (size or mtime).

    503, not 4xx: the request is valid and the fault is the node's; not 500:
    the node refuses deliberately, until an operator restores the file or
    registers it again (``genomeport files add --update``)."""
