"""One error hierarchy: each transport (CLI, HTTP, chat) renders these once, without a traceback."""

from __future__ import annotations


class SchoolgateError(Exception):
    """An error with a message fit to show the person who caused it."""

    http_status = 500
    exit_code = 1


class ConfigError(SchoolgateError):
    """A configuration file (school file, policy file, lexicons) is missing or invalid."""

    http_status = 500
    exit_code = 2


class BadInputError(SchoolgateError):
    """Input from outside (a JSON line, a webhook body) that cannot be used."""

    http_status = 400
    exit_code = 1
