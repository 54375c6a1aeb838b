"""``make demo``: Schoolgate as a school would see it, with nothing leaving this machine.

A fake Telegram Bot API server (the one the tests use) stands in for Telegram. Schoolgate runs
against it exactly as it would against Telegram, and a script plays a Year 3 parents' chat:
the chat is registered, parents agree to the notice, and they talk; some of what they say
breaks the code, so real flags appear. Sign in at http://127.0.0.1:8000 with the accounts
printed at start-up and review them.

The demo keeps its own database (var/demo.db), made afresh each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from datetime import timedelta
from pathlib import Path

import uvicorn
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.app import create_app  # noqa: E402
from bot.cli.database import migrate  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.services.accounts import create_user, temporary_password  # noqa: E402
from bot.services.registration import create_code  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store.db import transaction  # noqa: E402
from bot.store.models import Flag, School, UserRole, utcnow  # noqa: E402
from tests.channels.telegram.support import agree, deliver, register  # noqa: E402
from tests.fakes import telegram_updates as tu  # noqa: E402
from tests.fakes.telegram_api import FakeTelegramAPI  # noqa: E402

Sessions = async_sessionmaker[AsyncSession]
TOKEN = "123456:DEMO"
DATABASE = ROOT / "var" / "demo.db"
HOST, PORT = "127.0.0.1", 8000

YEAR3 = tu.group(-1001000000003, "Year 3 Parents (demo)")
PAT = tu.user(1001, "Pat", "Jones", username="pat_jones")
SAM = tu.user(1002, "Sam", "Reed")
JO = tu.user(1003, "Jo", "Bell")
CONVERSATION = (
    (PAT, "Morning all! Does anyone know if the trip to the farm is still on Friday?"),
    (SAM, "Yes I think so, the letter said wellies and a packed lunch"),
    (JO, "@mr_okafor can you tell us what time the coach leaves?"),
    (SAM, "Honestly Pat you are a complete idiot, it was in the newsletter"),
    (PAT, "Did you know Kerry's son Max has ADHD and is on a behaviour plan? That's why"),
    (JO, "This school is a shambles, everyone should leave a bad review on Google"),
)
ACCOUNTS = (
    ("head@demo.peartree.example", "Mrs Anita Patel", UserRole.DSL),
    ("deputy@demo.peartree.example", "Mrs Sarah Bennett", UserRole.SLT),
    ("office@demo.peartree.example", "Office Administrator", UserRole.ADMIN),
    ("governor@demo.peartree.example", "Chair of Governors", UserRole.VIEWER),
)


async def play_the_chat(api: FakeTelegramAPI, sessions: Sessions) -> None:
    """The chat registered, three parents agreeing, and their conversation (through the bot)."""
    async with transaction(sessions) as session:
        school = await session.scalar(select(School))
        assert school is not None
        code = await create_code(session, school, "Year 3", "demo", timedelta(hours=1), utcnow())
    notice = await register(api, sessions, YEAR3, PAT, code=code)
    for parent in (PAT, SAM, JO):
        await agree(api, sessions, notice, parent)
    for sender, text in CONVERSATION:
        await deliver(api, sessions, tu.message(None, YEAR3, sender, text))


async def make_accounts(sessions: Sessions) -> list[tuple[str, str, UserRole]]:
    """An account for each role, with a new password: (e-mail, password, role)."""
    made = []
    async with transaction(sessions) as session:
        school = await session.scalar(select(School))
        assert school is not None
        for email, name, role in ACCOUNTS:
            password = temporary_password()
            await create_user(
                session, school, email=email, name=name, role=role, password=password,
                actor="demo", now=utcnow(),
            )  # fmt: skip
            made.append((email, password, role))
        flags = await session.scalar(select(func.count()).select_from(Flag))
    print(f"==> the demo chat is registered; {flags} of its messages were flagged")
    return made


async def main() -> None:
    DATABASE.parent.mkdir(exist_ok=True)
    DATABASE.unlink(missing_ok=True)
    async with FakeTelegramAPI(token=TOKEN, privacy_mode=False) as api:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{DATABASE}",
            telegram_bot_token=SecretStr(TOKEN),
            telegram_api_base_url=api.base_url,
            public_base_url=None,
        )
        await migrate(settings.database_url, settings.migrations_dir)
        app = create_app(settings)
        server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=PORT, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                return  # the port is taken: uvicorn has said so
            await asyncio.sleep(0.05)
        print(f"==> a fake Telegram server on {api.base_url} (nothing leaves this machine)")
        runtime: Runtime = app.state.runtime
        await play_the_chat(api, runtime.sessions)
        accounts = await make_accounts(runtime.sessions)
        print(f"==> Schoolgate: http://{HOST}:{PORT}/login")
        print("    Sign in as one of these (the passwords are new each time the demo starts):")
        for email, password, role in accounts:
            print(f"    {role:<7} {email:<32} {password}")
        print(
            "    admin, slt and dsl accounts set up two-factor sign-in first: have an "
            "authenticator app (or 1Password, Bitwarden ...) ready.\n==> Ctrl-C to stop"
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving


if __name__ == "__main__":
    asyncio.run(main())
