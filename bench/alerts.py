"""Benchmark alert delivery: from an alert queued in its flag's transaction to the Bot API.

    .venv/bin/python bench/alerts.py [--alerts 1000] [--rate 20] [--staff 5] [--database URL]

Queues alerts at a steady rate, each in its own transaction followed by ``wake()`` (as the
update handler does), while the dispatcher delivers them through the runtime's bot
(python-telegram-bot with its rate limiter) to the fake Bot API on loopback. Reports the
latency from the start of each queueing transaction to the fake receiving its sendMessage, and
any duplicates. The database is SQLite in a temporary folder, built by Alembic, unless
--database names another.

Prints figures; it asserts nothing (this machine is shared and noisy, so the target is read by a
person: issue 4 asks for p99 under 2 s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.channels.telegram.delivery import CHANNEL, TelegramSender, telegram_bot  # noqa: E402
from bot.cli.database import describe_database  # noqa: E402
from bot.services.dispatcher import Dispatcher  # noqa: E402
from bot.services.outbox import enqueue  # noqa: E402
from bot.store.db import create_engine, session_factory, transaction  # noqa: E402
from bot.store.migrate import upgrade  # noqa: E402
from bot.store.models import OutboxStatus  # noqa: E402
from bot.store.repositories.outbox import OutboxRepository  # noqa: E402
from tests.fakes import telegram_updates as tu  # noqa: E402
from tests.fakes.telegram_api import FakeTelegramAPI  # noqa: E402

TOKEN = "123:BENCH"
BUTTONS = [
    ("Acknowledge", "flag:{n}:acknowledge"),
    ("Not a breach", "flag:{n}:false_positive"),
    ("Remind sender", "flag:{n}:remind"),
    ("Request removal", "flag:{n}:remove"),
]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def run(alerts: int, rate: float, staff: int, database: str | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = database or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        engine = create_engine(url)
        await upgrade(engine)
        sessions = session_factory(engine)
        members = [tu.user(9000 + i, "Staff", f"Member{i}") for i in range(staff)]
        async with FakeTelegramAPI(token=TOKEN) as api:
            for member in members:
                api.add_chat(tu.private_chat(member))
            bot = telegram_bot(TOKEN, api.base_url)
            await bot.initialize()
            dispatcher = Dispatcher(sessions, {CHANNEL: TelegramSender(bot)})
            stop = asyncio.Event()
            delivering = asyncio.create_task(dispatcher.run_forever(stop))
            print(
                f"alerts: {alerts} at {rate:g}/s to {staff} SLT members; "
                f"database {describe_database(url)}; fake Bot API on {api.base_url}"
            )

            queued_at: dict[str, float] = {}
            started = time.monotonic()
            for n in range(alerts):
                await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
                text = f"High: Year 3 Parents, Pat Jones: alert #{n}"
                queued_at[text] = time.monotonic()
                async with transaction(sessions) as session:
                    await enqueue(
                        session,
                        key=f"alert:{n}:{n % staff}",
                        channel=CHANNEL,
                        recipient=str(members[n % staff]["id"]),
                        text=text,
                        purpose="alert",
                        buttons=[(label, data.format(n=n)) for label, data in BUTTONS],
                    )
                dispatcher.wake()
            try:
                async with asyncio.timeout(60):
                    while len({c.params["text"] for c in api.calls_to("sendMessage")}) < alerts:
                        await asyncio.sleep(0.05)
            except TimeoutError:
                print("warning: not everything arrived within a minute of the last alert")
            elapsed = time.monotonic() - started
            stop.set()
            await delivering
            await bot.shutdown()

            calls = api.calls_to("sendMessage")
            first_arrival: dict[str, float] = {}
            for call in calls:
                first_arrival.setdefault(str(call.params["text"]), call.at)
            received = Counter(str(call.params["text"]) for call in calls)
        async with sessions() as session:
            counts = await OutboxRepository(session).counts()
        await engine.dispose()

    latencies = [
        (first_arrival[text] - queued) * 1000
        for text, queued in queued_at.items()
        if text in first_arrival
    ]
    duplicates = sum(n - 1 for n in received.values())
    print(
        f"delivered {len(first_arrival)}/{alerts} in {elapsed:.1f}s; "
        f"duplicates {duplicates}; outbox: "
        + ", ".join(f"{n} {status}" for status, n in counts.items())
    )
    if latencies:
        print(
            "latency, queued -> received by the Bot API: "
            f"p50 {statistics.median(latencies):.1f} ms, "
            f"p90 {percentile(latencies, 0.90):.1f} ms, "
            f"p99 {percentile(latencies, 0.99):.1f} ms, "
            f"max {max(latencies):.1f} ms"
        )
    missing = alerts - len(first_arrival)
    if missing or counts[OutboxStatus.FAILED]:
        print(f"warning: {missing} alerts never arrived, {counts[OutboxStatus.FAILED]} failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=1000, help="how many (default 1000)")
    parser.add_argument("--rate", type=float, default=20, help="alerts a second (default 20)")
    parser.add_argument("--staff", type=int, default=5, help="SLT members alerted (default 5)")
    parser.add_argument("--database", help="an async SQLAlchemy URL (default: temporary SQLite)")
    args = parser.parse_args()
    if args.alerts < 1 or args.rate <= 0 or args.staff < 1:
        parser.error("--alerts, --rate and --staff must be positive")
    asyncio.run(run(args.alerts, args.rate, args.staff, args.database))


if __name__ == "__main__":
    main()
