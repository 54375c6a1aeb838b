"""The admin backend: server-rendered pages for SLT, the DSL and administrators, and the same
data as a JSON API under /api/."""
