"""The HTTP side of Schoolgate: health checks, the JSON API and (later) the admin pages."""
