"""Running the policy engine without holding up everything else.

The engine is pure, CPU-bound Python. Run on the event loop, a long message would stall every
webhook, health check and chat of every school while it was checked; in a worker thread the
loop keeps answering (the interpreter hands it the lock every few milliseconds).
"""

from __future__ import annotations

import asyncio

from bot.policy import ChatMessage, PolicyEngine, Verdict


async def verdict_of(engine: PolicyEngine, message: ChatMessage) -> Verdict:
    """The engine's verdict on ``message``, worked out in a worker thread."""
    return await asyncio.to_thread(engine.classify, message)
