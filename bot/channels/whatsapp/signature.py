"""Whether a webhook request really came from Twilio: the ``X-Twilio-Signature`` header.

Twilio signs the URL it requested, exactly as configured (scheme, host, path and query), followed
by the form parameters sorted by name, with HMAC-SHA1 keyed by the account's auth token
(twilio.com/docs/usage/webhooks/webhooks-security). Behind a TLS-terminating proxy the app sees
``http://127.0.0.1:8000/twilio/...`` while Twilio signed ``https://school.example/twilio/...``:
rebuild the URL Twilio used with ``public_url`` from the configured public base, never from the
request's own scheme and host.

A JSON-bodied webhook is signed differently: the URL carries ``bodySHA256`` (the hex SHA-256 of
the raw body) and no parameters are signed; pass the raw body instead of parameters and
``RequestValidator`` checks both the hash and the signature (error 57012 describes both cases).

Not handled: Webhook Rules that sign with a SharedKey and HMAC-SHA256 (they add an
``X-Twilio-Webhooks-Signature-Settings`` header). Such a request fails here, as it should until
the key is configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

SIGNATURE_HEADER = "X-Twilio-Signature"

FormParams = Mapping[str, str] | Iterable[tuple[str, str]]
"""Decoded form parameters: a mapping, or (name, value) pairs when a name may repeat (e.g.
Starlette's ``form.multi_items()``)."""


def public_url(public_base_url: str, path: str, query: str = "") -> str:
    """The URL Twilio requested: the public base (e.g. ``https://school.example``, maybe with a
    path prefix the proxy strips) + the request's path + its raw query string, if any."""
    base = urlsplit(public_base_url)
    if base.scheme not in ("https", "http") or not base.netloc or base.query or base.fragment:
        raise ValueError(
            f"the public base URL must be like https://host[/prefix]: {public_base_url!r}"
        )
    if not path.startswith("/"):
        raise ValueError(f"a request path starts with '/': {path!r}")
    url = public_base_url.rstrip("/") + path
    return f"{url}?{query}" if query else url


def is_valid(
    auth_token: str, url: str, params_or_body: FormParams | str | bytes, signature: str | None
) -> bool:
    """Whether ``signature`` is Twilio's for this request, compared in constant time.

    ``url`` is the URL Twilio requested (see ``public_url``); ``params_or_body`` is the decoded
    form parameters of a form post, or the raw body of a JSON post (whose URL has bodySHA256).
    """
    if not signature or not auth_token:
        return False
    validator = RequestValidator(auth_token)
    if isinstance(params_or_body, str | bytes):
        if "bodySHA256" not in parse_qs(urlsplit(url).query):
            return False  # An unsigned body: only its hash in the URL ties it to the signature.
        try:
            body = (
                params_or_body.decode("utf-8")
                if isinstance(params_or_body, bytes)
                else params_or_body
            )
        except UnicodeDecodeError:
            return False
        return bool(validator.validate(url, body, signature))
    return bool(validator.validate(url, _Params.of(params_or_body), signature))


class _Params(dict[str, list[str]]):
    """Every value of every name, read by ``RequestValidator`` through ``getlist``."""

    @classmethod
    def of(cls, params: FormParams) -> _Params:
        pairs = params.items() if isinstance(params, Mapping) else params
        collected = cls()
        for name, value in pairs:
            collected.setdefault(name, []).append(value)
        return collected

    def getlist(self, name: str) -> list[str]:
        return self[name]
