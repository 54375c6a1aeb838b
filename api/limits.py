"""Reading a webhook's body no further than the limit the settings give."""

from __future__ import annotations

from fastapi import Request


async def body_within(request: Request, max_bytes: int) -> bytes | None:
    """The body, or None when it is larger than ``max_bytes`` (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            return None
    return bytes(body)
