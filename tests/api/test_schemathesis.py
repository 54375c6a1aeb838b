"""Schemathesis fuzzes every operation of the OpenAPI schema: no input may cause a server error.

It runs as its own process (its CLI) against the app served on loopback, signed in as a DSL and
as an administrator (together they hold every permission), with real records to find. Each role
runs on one database, to keep the suite quick: the administrator, whose routes write the most,
on PostgreSQL (stricter about values: it refuses an id beyond its integer range, or a NUL in
text), the DSL on SQLite.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.admin.deps import CSRF_HEADER, SESSION_COOKIE
from bot.services import user_sessions
from bot.services.schools import EngineCache
from bot.services.user_sessions import SessionPolicy
from bot.store.db import transaction
from bot.store.models import School, SessionStage, User, UserRole, utcnow
from tests.api.support import Sessions, an_account
from tests.api.test_authorisation import records_of

pytestmark = pytest.mark.anyio

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES = 8
RUN_LIMIT = 600
"""Seconds the run may take (a minute or two here) before it is killed and the test fails."""
# Operations that end the session the rest of the run uses (signing out; a new password, a reset
# two-factor or signing out everywhere, when the generated id is the fuzzer's own account).
EXCLUDED = r"^/api/auth/logout$|^/api/accounts/\{account_id\}/(password|two-factor/reset|sign-out)$"


async def session_headers(sessions: Sessions, user: User) -> list[str]:
    async with transaction(sessions) as session:
        attached = await session.get(User, user.id)
        assert attached is not None
        # A session that outlasts the run, however long the fuzzing takes.
        policy = SessionPolicy(idle=SessionPolicy().absolute)
        token, created = await user_sessions.start(
            session, attached, SessionStage.FULL, policy, utcnow()
        )
    return ["-H", f"Cookie: {SESSION_COOKIE}={token}", "-H", f"{CSRF_HEADER}: {created.csrf_token}"]


ROLE_ON = {"sqlite": UserRole.DSL, "postgresql": UserRole.ADMIN}


async def test_no_input_causes_a_server_error(
    live_server: str,
    db_engine: AsyncEngine,
    sessions: Sessions,
    engines: EngineCache,
    seeded_school: School,
    tmp_path: Path,
) -> None:
    role = ROLE_ON[db_engine.dialect.name]
    await records_of(sessions, engines, seeded_school, "-1001", "501")
    async with transaction(sessions) as session:
        user = await an_account(session, await session.merge(seeded_school), role=role)
    command = [
        str(SCHEMATHESIS), "run", f"{live_server}/openapi.json",
        *await session_headers(sessions, user),
        "--checks", "not_a_server_error",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(EXAMPLES),
        "--exclude-path-regex", EXCLUDED,
        "--seed", "20261130",
        "--generation-database", "none",
        "--request-timeout", "20",
        "--workers", "1",
        "--no-color",
        "--report-dir", str(tmp_path),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(RUN_LIMIT):
            output, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"schemathesis was still running after {RUN_LIMIT} s: killed")
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-12_000:]
    assert "operations" in text.lower()
