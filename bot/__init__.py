"""Schoolgate: a consent-first guardian for school parent group chats."""

__version__ = "0.1.0"
