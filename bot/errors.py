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


class NotFoundError(SchoolgateError):
    """No such record, or not one the person asking may see (they are told the same)."""

    http_status = 404
    exit_code = 1


class NotAllowedError(SchoolgateError):
    """The person is signed in but their role does not allow this."""

    http_status = 403
    exit_code = 1


class SignInRequiredError(SchoolgateError):
    """No valid session: sign in (again)."""

    http_status = 401
    exit_code = 1


class TooManyAttemptsError(SchoolgateError):
    """Sign-in is throttled after repeated failures."""

    http_status = 429
    exit_code = 1


class ConflictError(SchoolgateError):
    """The request clashes with the record's current state (e.g. a chat already closing)."""

    http_status = 409
    exit_code = 1
