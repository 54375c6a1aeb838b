"""Steps a person takes in the browser."""

from __future__ import annotations

from playwright.async_api import Page

from bot.store.models import User
from tests.api.support import PASSWORD, code_for


async def sign_in(page: Page, user: User, password: str = PASSWORD, steps_ahead: int = 0) -> None:
    """Sign in through the real pages: e-mail and password, then the authenticator's code."""
    await page.goto("/login")
    await page.get_by_label("E-mail address").fill(user.email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    if user.totp_confirmed_at is not None:
        await page.get_by_label("Code").fill(code_for(user, steps_ahead=steps_ahead))
        await page.get_by_role("button", name="Continue").click()
    await page.wait_for_load_state()
