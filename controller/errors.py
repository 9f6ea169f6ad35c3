"""Errors raised by the controller's core and mapped to gRPC status codes by the service.

Tree::

    GschedError
    ├── InvalidRequest      -> INVALID_ARGUMENT   (bad input; nothing changed)
    ├── NotFound            -> NOT_FOUND          (no such job / node / partition)
    ├── PermissionDenied    -> PERMISSION_DENIED  (acting on someone else's job)
    ├── Unauthenticated     -> UNAUTHENTICATED    (no verified identity)
    ├── Conflict            -> FAILED_PRECONDITION (wrong state for the request)
    ├── RateLimited         -> RESOURCE_EXHAUSTED (too many requests; retry later)
    └── InvalidTransition   -> INTERNAL           (a bug: an illegal state change)

Messages use SLURM's phrases so the CLI can print them as SLURM does.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "GschedError",
    "InvalidRequest",
    "InvalidTransition",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "Unauthenticated",
]


class GschedError(Exception):
    """Base of every error the controller reports to a caller."""

    code = "UNKNOWN"


class InvalidRequest(GschedError):
    code = "INVALID_ARGUMENT"


class NotFound(GschedError):
    code = "NOT_FOUND"


class PermissionDenied(GschedError):
    code = "PERMISSION_DENIED"


class Conflict(GschedError):
    code = "FAILED_PRECONDITION"


class InvalidTransition(GschedError):
    """An illegal job state change was attempted: always a bug."""

    code = "INTERNAL"


class Unauthenticated(GschedError):
    code = "UNAUTHENTICATED"
class RateLimited(GschedError):
    """A user submits faster than ``[controller] submit_rate`` allows."""

    code = "RESOURCE_EXHAUSTED"
