"""Who may do what in the admin backend: each role's permissions, in one table."""

from __future__ import annotations

from enum import StrEnum

from bot.store.models import UserRole


class Permission(StrEnum):
    VIEW_DASHBOARD = "view_dashboard"
    VIEW_REPORTS = "view_reports"
    REVIEW_FLAGS = "review_flags"
    """See flags and their messages, decide, and act on them (remind, remove, meet)."""
    VIEW_SAFEGUARDING = "view_safeguarding"
    """Also flags escalated to the Designated Safeguarding Lead."""
    VIEW_CHATS = "view_chats"
    MANAGE_CHATS = "manage_chats"
    """Registration codes and the observe-only switch."""
    CLOSE_CHATS = "close_chats"
    VIEW_PEOPLE = "view_people"
    PARENT_DATA = "parent_data"
    """A parent's data export (subject access) and erasure."""
    MANAGE_STAFF = "manage_staff"
    MANAGE_SETTINGS = "manage_settings"
    VIEW_RULES = "view_rules"
    """See the rules, try a message, see false-positive rates."""
    MANAGE_RULES = "manage_rules"
    MANAGE_ACCOUNTS = "manage_accounts"
    VIEW_AUDIT = "view_audit"


_SLT = frozenset(
    {
        Permission.VIEW_DASHBOARD,
        Permission.VIEW_REPORTS,
        Permission.REVIEW_FLAGS,
        Permission.VIEW_CHATS,
        Permission.MANAGE_CHATS,
        Permission.CLOSE_CHATS,
        Permission.VIEW_PEOPLE,
        Permission.VIEW_RULES,
        Permission.VIEW_AUDIT,
    }
)

ROLE_PERMISSIONS: dict[UserRole, frozenset[Permission]] = {
    UserRole.VIEWER: frozenset({Permission.VIEW_REPORTS}),
    UserRole.SLT: _SLT,
    UserRole.DSL: _SLT | {Permission.VIEW_SAFEGUARDING, Permission.PARENT_DATA},
    # Configuration and accounts; not the flagged messages themselves.
    UserRole.ADMIN: frozenset(
        {
            Permission.VIEW_DASHBOARD,
            Permission.VIEW_REPORTS,
            Permission.VIEW_CHATS,
            Permission.MANAGE_CHATS,
            Permission.VIEW_PEOPLE,
            Permission.PARENT_DATA,
            Permission.MANAGE_STAFF,
            Permission.MANAGE_SETTINGS,
            Permission.VIEW_RULES,
            Permission.MANAGE_RULES,
            Permission.MANAGE_ACCOUNTS,
            Permission.VIEW_AUDIT,
        }
    ),
}

# Roles that see personal data or change configuration must use a second factor.
TWO_FACTOR_REQUIRED = frozenset({UserRole.ADMIN, UserRole.SLT, UserRole.DSL})

ROLE_LABELS: dict[UserRole, str] = {
    UserRole.ADMIN: "Administrator",
    UserRole.SLT: "Senior leadership",
    UserRole.DSL: "Designated Safeguarding Lead",
    UserRole.VIEWER: "Viewer (reports only)",
}


def permissions_of(role: UserRole) -> frozenset[Permission]:
    return ROLE_PERMISSIONS.get(role, frozenset())
