"""Reading request bodies within bounds: size (413), time (408), and refusals the client can read.

A refused body is read and thrown away before the answer goes out: closing a socket with
unread data makes the kernel send a reset, and a client still uploading (urllib,
requests) then sees "connection reset" instead of the 413.
"""

from __future__ import annotations

import asyncio

from fastapi import Request

from codemill.serve.protocol import ApiError

# How much of a refused body is discarded, and for how long, before the answer goes out anyway.
DISCARD_LIMIT_BYTES = 64 * 1024 * 1024
DISCARD_TIMEOUT_S = 30.0


async def discard_body(receive, already: int = 0) -> None:
    """Read the rest of a request body into nothing, within the bounds above."""

    async def drain():
        size = already
        while size <= DISCARD_LIMIT_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    try:
        await asyncio.wait_for(drain(), DISCARD_TIMEOUT_S)
    except TimeoutError:
        pass  # the answer goes out anyway; uvicorn closes the connection


def _waits_for_continue(headers) -> bool:
    """The client sent ``Expect: 100-continue`` and has not sent the body (curl does, above 1 MB)."""
    return headers.get("expect", "").lower() == "100-continue"


async def read_body(request: Request, limit: int, timeout_s: float = 60.0) -> bytes:
    """The request body, refusing to buffer more than ``limit`` bytes (HTTP 413) or wait past ``timeout_s`` (408).

    A refused body is discarded rather than left unread, so the client receives the 413.
    """
    too_large = ApiError(413, f"request body is larger than {limit} bytes", code="body_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        if not _waits_for_continue(request.headers):
            await discard_body(request.receive)
        raise too_large
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    break
                chunks.append(chunk)
    except TimeoutError as e:
        raise ApiError(408, f"request body not received within {timeout_s:g}s", code="request_timeout") from e
    if size > limit:
        await discard_body(request.receive, size)
        raise too_large
    return b"".join(chunks)
