"""The fixtures live in tests/webapp.py (shared with the browser tests); their types are here."""

from tests.webapp import NewClient, SignIn

__all__ = ["NewClient", "SignIn"]
