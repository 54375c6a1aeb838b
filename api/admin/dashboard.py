"""The dashboard: open flags, flags by rule week by week, consent in each chat, and the alerts
nobody has acknowledged yet.

What it counts depends on who looks: flags escalated to the Designated Safeguarding Lead are
counted only for the DSL (separately), and only those who review flags get links to them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.admin.charts import Series, StackedBars, colour_for, legend, share_bar, stacked_bars
from api.admin.deps import CurrentUser, DbSession, SignedIn, requires, school_of
from api.admin.templating import home_path, redirect, render
from bot.policy.rules import RULE_ORDER
from bot.services import dashboard
from bot.services.access import Permission
from bot.services.dashboard import Dashboard, WeeklyFlags
from bot.services.reports import duration_text, rule_key, rule_label
from bot.services.schools import school_zone
from bot.store.models import School, utcnow

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["dashboard"])

OTHER_RULE_COLOUR = "#777777"


def rule_colour(rule: str) -> str:
    """Each rule keeps its colour on every chart."""
    order, _ = rule_key(rule)
    return colour_for(order) if order < len(RULE_ORDER) else OTHER_RULE_COLOUR


def weekly_chart(weekly: WeeklyFlags) -> StackedBars:
    return StackedBars(
        title=f"Flags by rule for each of the last {len(weekly.weeks)} weeks",
        categories=tuple(f"{week.day} {week:%b}" for week in weekly.weeks),
        series=tuple(Series(s.label, s.counts, rule_colour(s.rule)) for s in weekly.rules),
        empty="No flags in these weeks",
    )


async def _dashboard(db: DbSession, user: SignedIn, school: School) -> Dashboard:
    return await dashboard.dashboard(
        db, school, utcnow(),
        safeguarding=user.can(Permission.VIEW_SAFEGUARDING),
        itemise_alerts=user.can(Permission.REVIEW_FLAGS),
        installation=user.can(Permission.MANAGE_SETTINGS),
    )  # fmt: skip


@pages.get("/")
async def dashboard_page(request: Request, db: DbSession, user: CurrentUser) -> Response:
    if not user.can(Permission.VIEW_DASHBOARD):
        return redirect(request, home_path(user))
    school = await school_of(db, user)
    board = await _dashboard(db, user, school)
    chart = weekly_chart(board.weekly)
    return render(
        request,
        "dashboard.html",
        {
            "board": board,
            "chart": stacked_bars(chart),
            "chart_legend": legend(chart.series),
            "chart_labels": chart.categories,
            "zone": school_zone(school),
            "share_bar": share_bar,
            "duration": duration_text,
            "rule_label": rule_label,
            "can_review": user.can(Permission.REVIEW_FLAGS),
        },
        user=user,
    )


@api.get("/dashboard", responses={403: {"description": "Your role has no dashboard"}})
async def api_dashboard(
    db: DbSession, user: Annotated[SignedIn, requires(Permission.VIEW_DASHBOARD)]
) -> Dashboard:
    """The dashboard's figures as the signed-in person may see them: open flags by severity
    (safeguarding ones only for the DSL), flags by rule for each of the last 12 weeks, consent
    in each chat, and the alerts sent at once that nobody has acknowledged (listed for
    reviewers)."""
    return await _dashboard(db, user, await school_of(db, user))
