"""Every router of the admin backend, in the order the app includes them."""

from __future__ import annotations

from fastapi import APIRouter

from api.admin import (
    accounts,
    audit,
    auth,
    chats,
    dashboard,
    flags,
    people,
    reports,
    rules,
    school_settings,
)

ROUTERS: tuple[APIRouter, ...] = tuple(
    router
    for module in (
        auth, dashboard, flags, chats, people, school_settings, rules, audit, reports, accounts,
    )
    for router in (module.pages, module.api)
)  # fmt: skip
