"""Storage: SQLAlchemy models, the engine and session factory, and repositories (all the SQL)."""
