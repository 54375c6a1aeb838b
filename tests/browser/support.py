"""Steps a person takes in the browser."""

from __future__ import annotations

import re

from playwright.async_api import BrowserContext, Dialog, Locator, Page

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


def section(page: Page, heading: str) -> Locator:
    """The part of the page (a ``<section>``) under the heading ``heading``."""
    return page.locator("section").filter(has=page.get_by_role("heading", name=heading, exact=True))


def fact(within: Locator, term: str) -> Locator:
    """The value (``<dd>``) of the term ``term`` in a list of facts (``<dl>``)."""
    return (
        within.locator("dt")
        .filter(has_text=re.compile(f"^{re.escape(term)}$"))
        .locator("xpath=following-sibling::dd[1]")
    )


async def page_width(page: Page) -> int:
    """How wide the page is drawn, in CSS pixels: wider than the screen means scrolling sideways."""
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    return width


async def press_and_confirm(page: Page, button: Locator) -> list[str]:
    """Press ``button`` and agree to the question its form asks first (``data-confirm``): the
    questions asked, filled in by the time the next page has loaded."""
    questions: list[str] = []

    async def agree(dialog: Dialog) -> None:
        questions.append(dialog.message)
        await dialog.accept()

    page.on("dialog", agree)
    try:
        await button.click()  # returns once the question is answered: it holds the page up
    finally:
        page.remove_listener("dialog", agree)
    return questions


def main_heading(page: Page) -> Locator:
    return page.get_by_role("heading", level=1)


async def on_a_phone(phone: BrowserContext, user: User) -> Page:
    """A page in the phone's browser, signed in as ``user`` (who has just signed in elsewhere:
    a code is good once, so theirs is the authenticator's next one)."""
    page = await phone.new_page()
    await sign_in(page, user, steps_ahead=1)
    return page
