"""Undecodable gRPC requests get INVALID_ARGUMENT, not UNKNOWN.

grpc answers a request its deserializer cannot parse (truncated or corrupt
protobuf, invalid UTF-8 in a string field) with ``UNKNOWN`` and a Python
exception name. :func:`guard` wraps a method handler so that it decodes instead: a
malformed message becomes a marker that the wrapper turns into
``INVALID_ARGUMENT`` ("Invalid request: malformed message"), before any servicer
code runs. The controller wraps each method once, when the services are
registered (controller/main.py), rather than with a per-call interceptor. Works for the
unary, server-streaming and bidirectional methods of every service; what the
request contains is then checked by :mod:`gsched.controller.limits`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

__all__ = ["guard"]

logger = logging.getLogger(__name__)


class _Malformed:
    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


def _decoder(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except Exception as exc:  # any parse error: the client's fault, never ours
            return _Malformed(str(exc).rsplit(": ", 1)[-1] or type(exc).__name__)

    return decode


async def _refuse(context: Any, method: str, bad: _Malformed) -> None:
    logger.warning("%s from %s: malformed request (%s)", method, context.peer(), bad.why)
    await context.abort(
        grpc.StatusCode.INVALID_ARGUMENT, f"Invalid request: malformed message ({bad.why})"
    )


def guard(handler: Any, method: str) -> Any:
    """``handler`` with a decoder that turns undecodable bytes into INVALID_ARGUMENT."""
    decode = _decoder(handler.request_deserializer)
    out = handler.response_serializer
    if handler.unary_unary is not None:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: Any) -> Any:
            if isinstance(request, _Malformed):
                await _refuse(context, method, request)
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, request_deserializer=decode, response_serializer=out
        )
    if handler.unary_stream is not None:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            if isinstance(request, _Malformed):
                await _refuse(context, method, request)
            async for reply in inner_us(request, context):
                yield reply

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, request_deserializer=decode, response_serializer=out
        )
    inner = handler.stream_stream or handler.stream_unary

    async def checked(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        async for request in requests:
            if isinstance(request, _Malformed):
                await _refuse(context, method, request)
            yield request

    if handler.stream_stream is not None:

        async def stream_stream(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            async for reply in inner(checked(requests, context), context):
                yield reply

        return grpc.stream_stream_rpc_method_handler(
            stream_stream, request_deserializer=decode, response_serializer=out
        )

    async def stream_unary(requests: AsyncIterator[Any], context: Any) -> Any:
        return await inner(checked(requests, context), context)

    return grpc.stream_unary_rpc_method_handler(
        stream_unary, request_deserializer=decode, response_serializer=out
    )
