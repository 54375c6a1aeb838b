"""The X-Twilio-Signature check, against signatures made by twilio's own RequestValidator."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from bot.channels.whatsapp.signature import SIGNATURE_HEADER, is_valid, public_url
from tests.fakes.twilio_webhooks import (
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    SCHOOL_WHATSAPP,
    TlsTerminatingProxy,
    incoming_message,
    parent,
    signed,
    signed_json,
)

pytestmark = pytest.mark.anyio

URL = f"{PUBLIC_BASE_URL}/twilio/messages"
PARAMS = incoming_message(parent(1), SCHOOL_WHATSAPP, "Have you seen what was said in Year 3?")


def signature_for(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return signed(url, params, token)[SIGNATURE_HEADER]


def test_public_url_is_the_configured_base_with_the_request_path_and_query() -> None:
    assert public_url(PUBLIC_BASE_URL, "/twilio/messages") == URL
    assert public_url(PUBLIC_BASE_URL + "/", "/twilio/messages", "school=3") == URL + "?school=3"
    assert (
        public_url("https://trust.example/schoolgate", "/twilio/messages")
        == "https://trust.example/schoolgate/twilio/messages"
    )
    for base in ("schoolgate.example.sch.uk", "ftp://x.example", "https://x.example/?a=1"):
        with pytest.raises(ValueError, match="public base URL"):
            public_url(base, "/twilio/messages")
    with pytest.raises(ValueError, match="starts with '/'"):
        public_url(PUBLIC_BASE_URL, "twilio/messages")


def test_a_signature_made_for_the_public_url_validates() -> None:
    assert is_valid(AUTH_TOKEN, URL, PARAMS, signature_for(URL, PARAMS))
    # Twilio's signature of the URL with or without the default port is the same request.
    assert is_valid(AUTH_TOKEN, URL, PARAMS, signature_for(URL.replace(".uk/", ".uk:443/"), PARAMS))


@pytest.mark.parametrize(
    ("url", "params", "token"),
    [
        pytest.param(URL, PARAMS | {"Body": "Nothing to see"}, AUTH_TOKEN, id="tampered body"),
        pytest.param(URL, PARAMS | {"Extra": "1"}, AUTH_TOKEN, id="added parameter"),
        pytest.param(
            URL, {k: v for k, v in PARAMS.items() if k != "Body"}, AUTH_TOKEN, id="missing"
        ),
        pytest.param(URL, PARAMS, "0" * 32, id="wrong token"),
        pytest.param(URL.replace("https:", "http:"), PARAMS, AUTH_TOKEN, id="http not https"),
        pytest.param(URL.replace("schoolgate.", "other."), PARAMS, AUTH_TOKEN, id="other host"),
        pytest.param(URL + "?school=3", PARAMS, AUTH_TOKEN, id="query not signed"),
        pytest.param(URL.replace("/messages", "/status"), PARAMS, AUTH_TOKEN, id="other path"),
    ],
)
def test_anything_but_the_signed_request_fails(
    url: str, params: dict[str, str], token: str
) -> None:
    assert not is_valid(token, url, params, signature_for(URL, PARAMS))


def test_a_missing_or_empty_signature_or_token_fails() -> None:
    signature = signature_for(URL, PARAMS)
    assert not is_valid(AUTH_TOKEN, URL, PARAMS, None)
    assert not is_valid(AUTH_TOKEN, URL, PARAMS, "")
    assert not is_valid("", URL, PARAMS, signature)


def test_repeated_parameters_count_every_value() -> None:
    pairs = [("Filters", "onMessageAdded"), ("Filters", "onMessageAdd"), ("Body", "hi")]
    signature = RequestValidator(AUTH_TOKEN).compute_signature(URL, ImmutableMultiDict(pairs))
    assert is_valid(AUTH_TOKEN, URL, pairs, signature)
    assert not is_valid(AUTH_TOKEN, URL, pairs[1:], signature)
    assert not is_valid(AUTH_TOKEN, URL, dict(pairs), signature)  # A dict keeps one value.


def test_a_json_body_is_checked_through_its_hash_in_the_url() -> None:
    body = '{"EventType": "onMessageAdded", "Body": "hello"}'
    url, headers = signed_json(URL, body)
    signature = headers[SIGNATURE_HEADER]
    assert "bodySHA256=" in url
    assert is_valid(AUTH_TOKEN, url, body, signature)
    assert is_valid(AUTH_TOKEN, url, body.encode(), signature)
    assert not is_valid(AUTH_TOKEN, url, body.replace("hello", "bye"), signature)
    assert not is_valid(AUTH_TOKEN, url, b"\xff\xfe", signature)
    # Without the hash in the URL nothing ties the body to the signature.
    assert not is_valid(AUTH_TOKEN, URL, body, signature_for(URL, {}))


async def test_behind_a_tls_terminating_proxy_only_the_public_url_validates() -> None:
    seen: list[dict[str, object]] = []

    async def webhook(request: Request) -> JSONResponse:
        form = await request.form()
        pairs = [(name, str(value)) for name, value in form.multi_items()]
        signature = request.headers.get(SIGNATURE_HEADER)
        seen.append(
            {
                "url": str(request.url),
                "proto": request.headers.get("x-forwarded-proto"),
                "as_seen": is_valid(AUTH_TOKEN, str(request.url), pairs, signature),
                "public": is_valid(
                    AUTH_TOKEN,
                    public_url(PUBLIC_BASE_URL, request.url.path, request.url.query),
                    pairs,
                    signature,
                ),
            }
        )
        return JSONResponse({})

    app = Starlette(routes=[Route("/twilio/messages", webhook, methods=["POST"])])
    proxy = TlsTerminatingProxy("http://127.0.0.1:8000", httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=proxy) as twilio:
        for url in (URL, URL + "?school=3"):
            response = await twilio.post(url, data=PARAMS, headers=signed(url, PARAMS))
            assert response.status_code == 200

    assert seen == [
        {
            "url": "http://127.0.0.1:8000/twilio/messages",
            "proto": "https",
            "as_seen": False,
            "public": True,
        },
        {
            "url": "http://127.0.0.1:8000/twilio/messages?school=3",
            "proto": "https",
            "as_seen": False,
            "public": True,
        },
    ]
