"""The annual review for the headteacher and governors: a printable page, a CSV download and
JSON, all three drawn from one ``AnnualReport`` so they always agree. Counts only.

Exporting the CSV is recorded in the audit log (it leaves Schoolgate); reading the page is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from api.admin.charts import Series, StackedBars, legend, share_bar, stacked_bars
from api.admin.dashboard import rule_colour
from api.admin.deps import DbSession, SignedIn, requires, school_of
from api.admin.templating import render
from bot.services import reports
from bot.services.access import Permission
from bot.services.reports import AnnualReport, academic_year_of, year_label
from bot.services.schools import school_zone
from bot.store.models import School, utcnow

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["reports"])

Reader = Annotated[SignedIn, requires(Permission.VIEW_REPORTS)]
Year = Annotated[
    int | None,
    Query(
        ge=2000,
        le=2100,
        description="The academic year starting 1 September of this year (default: this one)",
    ),
]
NOT_STARTED: dict[int | str, dict[str, Any]] = {
    400: {"description": "That academic year has not started yet"}
}


@dataclass(frozen=True)
class Month:
    short: str
    long: str


def _chosen(year: int | None, school: School, now: datetime) -> int:
    return year if year is not None else academic_year_of(now, school_zone(school))


async def _report(db: DbSession, school: School, year: int | None) -> AnnualReport:
    now = utcnow()
    return await reports.annual_report(db, school, _chosen(year, school, now), now)


def monthly_chart(report: AnnualReport) -> StackedBars:
    months = report.flags_by_month
    return StackedBars(
        title=f"Flags by rule for each month of {report.label}",
        categories=tuple(f"{date.fromisoformat(m + '-01'):%b}" for m in months.months),
        series=tuple(
            Series(s.label, s.counts, rule_colour(s.rule)) for s in months.rules if any(s.counts)
        ),
        empty="No flags this year",
    )


async def _years(db: DbSession, school: School) -> list[int]:
    return await reports.report_years(db, school, utcnow())


@pages.get("/reports")
async def reports_page(request: Request, db: DbSession, user: Reader) -> HTMLResponse:
    school = await school_of(db, user)
    years = await _years(db, school)
    return render(
        request,
        "reports/index.html",
        {"years": [(year, year_label(year)) for year in years], "current": years[0]},
        user=user,
    )


@pages.get("/reports/annual", responses=NOT_STARTED)
async def annual_page(
    request: Request, db: DbSession, user: Reader, year: Year = None
) -> HTMLResponse:
    school = await school_of(db, user)
    report = await _report(db, school, year)
    chart = monthly_chart(report)
    return render(
        request,
        "reports/annual.html",
        {
            "report": report,
            "months": [
                Month(f"{day:%b}", f"{day:%B %Y}")
                for day in (date.fromisoformat(m + "-01") for m in report.flags_by_month.months)
            ],
            "chart": stacked_bars(chart),
            "chart_legend": legend(chart.series),
            "years": [(y, year_label(y)) for y in await _years(db, school)],
            "zone": school_zone(school),
            "duration": reports.duration_text,
            "share_bar": share_bar,
        },
        user=user,
    )


@pages.get("/reports/annual.csv", responses=NOT_STARTED)
async def annual_csv(db: DbSession, user: Reader, year: Year = None) -> Response:
    school = await school_of(db, user)
    now = utcnow()
    chosen = _chosen(year, school, now)
    text = await reports.export_annual_csv(db, school, chosen, user.actor, now)
    return Response(
        # The byte-order mark tells spreadsheet programs the file is UTF-8.
        content="\ufeff" + text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{reports.csv_filename(chosen)}"'},
    )


class ReportYear(BaseModel):
    year: int
    label: str
    """e.g. "2025/26"."""


@api.get("/reports", responses={403: {"description": "Your role may not read reports"}})
async def api_report_years(db: DbSession, user: Reader) -> list[ReportYear]:
    """The academic years there is a review of, newest (the current one) first."""
    school = await school_of(db, user)
    return [ReportYear(year=y, label=year_label(y)) for y in await _years(db, school)]


@api.get(
    "/reports/annual",
    responses={**NOT_STARTED, 403: {"description": "Your role may not read reports"}},
)
async def api_annual(db: DbSession, user: Reader, year: Year = None) -> AnnualReport:
    """The annual review of an academic year (1 September to 31 August): flags by rule and
    month, decisions by rule with the false-positive rate, time to acknowledge, alerts not
    acknowledged, chats closed and consent now. Counts only, no personal data."""
    return await _report(db, await school_of(db, user), year)
