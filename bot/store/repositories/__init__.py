"""Repositories hold the SQL: one per aggregate, each given the caller's session."""
