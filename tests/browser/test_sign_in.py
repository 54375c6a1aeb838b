"""Signing in with two-factor, in Chromium."""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.async_api import BrowserContext, Page, expect

from bot.store.db import transaction
from bot.store.models import School, UserRole
from tests.api.support import PASSWORD, Sessions, an_account
from tests.browser.conftest import Screenshot
from tests.browser.support import sign_in

pytestmark = pytest.mark.anyio


async def test_sign_in_with_a_code_from_the_authenticator_app(
    page: Page, sessions: Sessions, seeded_school: School, screenshot: Screenshot
) -> None:
    async with transaction(sessions) as session:
        slt = await an_account(session, seeded_school, role=UserRole.SLT, name="Mrs Anita Patel")
    await page.goto("/login")
    await screenshot(page, "sign-in")
    await sign_in(page, slt)
    await page.goto("/account")
    await expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    await expect(page.get_by_text("Mrs Anita Patel").first).to_be_visible()


async def test_first_sign_in_sets_up_two_factor_with_a_qr_code(
    page: Page, sessions: Sessions, seeded_school: School, screenshot: Screenshot
) -> None:
    async with transaction(sessions) as session:
        dsl = await an_account(session, seeded_school, role=UserRole.DSL, two_factor=False)
    await page.goto("/login")
    await page.get_by_label("E-mail address").fill(dsl.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    await expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    await screenshot(page, "two-factor-setup")
    await page.get_by_text("Cannot scan it?").click()
    secret = (await page.locator("[data-secret]").inner_text()).strip()
    await page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on two-factor sign-in").click()
    await page.goto("/account")
    await expect(page.get_by_text(re.compile("On since"))).to_be_visible()


async def test_a_wrong_password_says_so_without_saying_which_part(
    page: Page, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        slt = await an_account(session, seeded_school, role=UserRole.SLT)
    await page.goto("/login")
    await page.get_by_label("E-mail address").fill(slt.email)
    await page.get_by_label("Password").fill("not the right one at all")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "That e-mail address and password do not match an account."
    )


async def test_the_sign_in_page_fits_a_phone(phone: BrowserContext, screenshot: Screenshot) -> None:
    page = await phone.new_page()
    await page.goto("/login")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "nothing wider than the screen"
    await screenshot(page, "sign-in-phone")
