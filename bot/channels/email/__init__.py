"""E-mail: a second channel for alerts, per person, through the school's SMTP server."""
