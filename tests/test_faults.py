"""A fault test for every error the protocol can produce: type, message, and the partial answer kept."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from flowise_integrations import (
    AsyncFlowiseClient,
    AuthenticationError,
    BadRequestError,
    FlowExecutionError,
    FlowiseAPIError,
    FlowiseClient,
    FlowiseConnectionError,
    FlowiseProtocolError,
    FlowiseTimeoutError,
    IncompleteStreamError,
    InternalServerError,
    LostAnswerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
)
from flowise_integrations.errors import parse_retry_after

SSE = {"content-type": "text/event-stream"}


def frame(event: str, data: object) -> bytes:
    return b"message:\ndata:" + json.dumps({"event": event, "data": data}).encode() + b"\n\n"


def tokens(*parts: str) -> bytes:
    return b"".join(frame("token", p) for p in parts)


END = frame("end", "[DONE]")
META = frame("metadata", {"chatId": "c1", "chatMessageId": "m1", "sessionId": "c1"})


def client_for(handler: Callable[[httpx.Request], httpx.Response], **kwargs: object) -> FlowiseClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return FlowiseClient("http://flowise.test", http_client=http, diagnose_after=None, **kwargs)  # type: ignore[arg-type]


def reply(status: int, body: bytes | str, headers: dict[str, str] | None = None) -> Callable[..., httpx.Response]:
    content = body.encode() if isinstance(body, str) else body
    return lambda request: httpx.Response(status, headers=headers or {}, content=content)


def flowise_error(status: int, message: str) -> bytes:
    return json.dumps({"statusCode": status, "success": False, "message": message, "stack": {}}).encode()


JSON = {"content-type": "application/json; charset=utf-8"}


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "message"),
    [
        (400, flowise_error(400, "Invalid Chatflow ID"), JSON, BadRequestError, "Invalid Chatflow ID"),
        (401, b'{"error":"Unauthorized Access"}', JSON, AuthenticationError, "Unauthorized Access"),
        (403, b'{"message":"Forbidden"}', JSON, PermissionDeniedError, "Forbidden"),
        (
            403,
            b"This site is not allowed to access this chatbot",
            {"content-type": "text/html"},
            PermissionDeniedError,
            "This site is not allowed to access this chatbot",
        ),
        (
            404,
            flowise_error(404, "Chatflow x not found in the database!"),
            JSON,
            NotFoundError,
            "Chatflow x not found in the database!",
        ),
        (412, flowise_error(412, "Error: id not provided!"), JSON, BadRequestError, "Error: id not provided!"),
        (
            413,
            b"request entity too large",
            {"content-type": "text/html"},
            PayloadTooLargeError,
            "request entity too large",
        ),
        (
            429,
            b"Too many requests, please try again later.",
            {"content-type": "text/html", "retry-after": "7"},
            RateLimitError,
            "Too many requests, please try again later.",
        ),
        (
            500,
            flowise_error(500, "Error: predictionsServices.buildChatflow - Unauthorized"),
            JSON,
            AuthenticationError,
            "Error: predictionsServices.buildChatflow - Unauthorized",
        ),
        (
            500,
            flowise_error(500, "Error: predictionsServices.buildChatflow - boom"),
            JSON,
            FlowExecutionError,
            "Error: predictionsServices.buildChatflow - boom",
        ),
        (
            500,
            flowise_error(500, "Error: chatflowsService.getChatflowById - db down"),
            JSON,
            InternalServerError,
            "Error: chatflowsService.getChatflowById - db down",
        ),
        (502, b'{"error":"upstream connect error"}', JSON, InternalServerError, "upstream connect error"),
        (503, b"", {}, InternalServerError, "Flowise answered HTTP 503 with an empty body"),
    ],
)
@pytest.mark.parametrize("mode", ["predict", "stream"])
def test_http_errors_map_to_typed_exceptions(
    mode: str, status: int, body: bytes, headers: dict[str, str], cls: type[FlowiseAPIError], message: str
) -> None:
    client = client_for(reply(status, body, headers), max_retries=0)
    with pytest.raises(cls) as info:
        if mode == "predict":
            client.predict("flow", "hi")
        else:
            with client.stream("flow", "hi"):
                pass
    assert type(info.value) is cls
    assert info.value.message == message
    assert info.value.status_code == status
    assert str(status) in str(info.value)
    if cls is RateLimitError:
        assert info.value.retry_after == 7.0  # type: ignore[attr-defined]


def test_retry_after_http_date_and_garbage() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None
    assert parse_retry_after(" 3 ") == 3.0


@pytest.mark.parametrize("mode", ["predict", "stream"])
def test_html_page_on_a_wrong_route_is_a_protocol_error(mode: str) -> None:
    page = "<!DOCTYPE html><html><head><title>Flowise</title></head><body><div id=root></div></body></html>"
    client = client_for(reply(200, page, {"content-type": "text/html; charset=utf-8"}))
    with pytest.raises(FlowiseProtocolError, match="base_url is the server root") as info:
        if mode == "predict":
            client.predict("flow", "hi")
        else:
            client.stream("flow", "hi").until_done()
    assert "<!DOCTYPE html>" in info.value.message


def test_json_reply_that_is_not_an_object_is_a_protocol_error() -> None:
    client = client_for(reply(200, b'"OK"', JSON))
    with pytest.raises(FlowiseProtocolError, match="expected text/event-stream or a JSON object"):
        client.predict("flow", "hi")


def test_in_band_error_keeps_the_partial_answer() -> None:
    body = frame("start", "") + tokens("Hello", " wor") + frame("error", "Error: LLM exploded") + END
    client = client_for(reply(200, body, SSE))
    seen: list[str] = []
    with pytest.raises(FlowExecutionError) as info, client.stream("flow", "hi") as stream:
        seen.extend(e.event for e in stream)
    assert seen == ["start", "token", "token", "error", "end"]  # every event is delivered before the raise
    assert info.value.message == "Error: LLM exploded"
    assert info.value.status_code is None
    assert info.value.partial is not None
    assert info.value.partial.text == "Hello wor"
    assert info.value.partial.finish_reason == "error"


def test_in_band_unauthorized_is_an_authentication_error() -> None:
    body = frame("error", "Error: predictionsServices.buildChatflow - Unauthorized") + END
    with pytest.raises(AuthenticationError):
        client_for(reply(200, body, SSE)).stream("flow", "hi").until_done()


def test_eof_without_end_is_incomplete_and_keeps_the_answer() -> None:
    body = frame("start", "") + tokens("Hello", " there") + b'message:\ndata:{"event":"tok'
    with pytest.raises(IncompleteStreamError) as info:
        client_for(reply(200, body, SSE)).stream("flow", "hi").until_done()
    assert type(info.value) is IncompleteStreamError
    assert info.value.partial is not None
    assert info.value.partial.text == "Hello there"
    assert info.value.partial.finish_reason == "incomplete"
    assert "unfinished event" in info.value.message


def test_dropped_connection_mid_stream_is_incomplete_with_partial() -> None:
    def body() -> Iterator[bytes]:
        yield tokens("Hel", "lo")
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    client = client_for(lambda request: httpx.Response(200, headers=SSE, content=body()))
    with pytest.raises(IncompleteStreamError) as info:
        client.stream("flow", "hi").until_done()
    assert info.value.partial is not None
    assert info.value.partial.text == "Hello"
    assert "broke mid-stream" in info.value.message


def test_malformed_frames_are_surfaced_not_dropped() -> None:
    body = tokens("a") + b"message:\ndata:{not json\n\n" + b"data:[1,2]\n\n" + tokens("b") + META + END
    with client_for(reply(200, body, SSE)).stream("flow", "hi") as stream:
        kinds = [e.event for e in stream]
    assert kinds == ["token", "<malformed>", "<malformed>", "token", "metadata", "end"]
    assert stream.result.text == "ab"
    assert stream.result.malformed_frames == ["{not json", "[1,2]"]


def test_unknown_events_and_missing_data_pass_through() -> None:
    body = (
        b'message:\ndata:{"event":"sourceDocuments"}\n\n' + frame("brandNewEvent", {"x": 1}) + tokens("ok") + META + END
    )
    with client_for(reply(200, body, SSE)).stream("flow", "hi") as stream:
        events = list(stream)
    assert events[0].event == "sourceDocuments"
    assert events[0].data is None
    assert events[1].event == "brandNewEvent"
    assert events[1].data == {"x": 1}
    assert stream.result.text == "ok"
    assert stream.result.source_documents == []


# -- lost answers (Flowise's queue-mode bug: only metadata + end) ----------------------------------------


def _lost_then_history(requests: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.path.startswith("/api/v1/prediction/"):
            return httpx.Response(200, headers=SSE, content=META + END)
        assert request.url.path == "/api/v1/chatmessage/flow"
        if request.headers.get("authorization") != "Bearer sk-workspace":
            return httpx.Response(401, json={"error": "Unauthorized Access"})
        rows = [
            {"id": "u1", "role": "userMessage", "content": "hi"},
            {
                "id": "m1",
                "role": "apiMessage",
                "content": "The stored answer.",
                "sourceDocuments": '[{"pageContent": "doc", "metadata": {}}]',
            },
        ]
        return httpx.Response(200, json=rows)

    return handle


def test_lost_answer_is_recovered_with_an_api_key() -> None:
    requests: list[httpx.Request] = []
    client = client_for(_lost_then_history(requests), api_key="sk-workspace")
    with client.stream("flow", "hi") as stream:
        events = list(stream)
    assert [e.event for e in events] == ["metadata", "token", "sourceDocuments", "end"]
    result = stream.result
    assert result.text == "The stored answer."
    assert result.recovered
    assert result.source_documents[0].page_content == "doc"
    assert requests[1].url.params["messageId"] == "m1"
    assert requests[1].url.params["chatId"] == "c1"


async def test_lost_answer_is_recovered_async() -> None:
    requests: list[httpx.Request] = []
    http = httpx.AsyncClient(transport=httpx.MockTransport(_lost_then_history(requests)))
    client = AsyncFlowiseClient("http://flowise.test", "sk-workspace", http_client=http, diagnose_after=None)
    result = await client.stream("flow", "hi").until_done()
    assert result.text == "The stored answer."
    assert result.recovered


def test_lost_answer_without_a_key_raises_clearly() -> None:
    with pytest.raises(LostAnswerError, match="set an API key") as info:
        client_for(_lost_then_history([])).stream("flow", "hi").until_done()
    assert info.value.partial is not None
    assert info.value.partial.chat_message_id == "m1"


def test_lost_answer_with_a_wrong_key_says_why() -> None:
    with pytest.raises(LostAnswerError, match="recovering it failed: Unauthorized Access"):
        client_for(_lost_then_history([]), api_key="wrong").stream("flow", "hi").until_done()


def test_a_genuinely_empty_answer_is_not_a_lost_answer() -> None:
    """`start` arrived, so the model did stream: an empty answer is the answer."""
    body = frame("start", "") + META + END
    assert client_for(reply(200, body, SSE)).stream("flow", "hi").until_done().text == ""


# -- retries: before the first byte only -------------------------------------------------------------


def test_retries_429_and_5xx_then_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("flowise_integrations.client._sleep", lambda delay, control: sleeps.append(delay))
    statuses = iter([(429, {"retry-after": "2"}), (502, {}), (503, {}), (200, SSE)])

    def handle(request: httpx.Request) -> httpx.Response:
        status, headers = next(statuses)
        return httpx.Response(status, headers=headers, content=tokens("ok") + META + END if status == 200 else b"x")

    result = client_for(handle, max_retries=3).stream("flow", "hi").until_done()
    assert result.text == "ok"
    assert sleeps[0] == 2.0  # Retry-After honoured
    assert len(sleeps) == 3
    assert all(0 <= s <= 8 for s in sleeps[1:])


def test_connect_errors_are_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("flowise_integrations.client._sleep", lambda delay, control: None)
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(FlowiseConnectionError, match=r"cannot reach http://flowise\.test/api/v1/prediction/flow"):
        client_for(handle, max_retries=2).predict("flow", "hi")
    assert len(calls) == 3


def test_no_retry_for_400_or_500(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(500, json={"message": "boom"})

    with pytest.raises(InternalServerError):  # a plain 500 ({"message": "boom"}) is never retried
        client_for(handle, max_retries=5).predict("flow", "hi")
    assert len(calls) == 1


def test_never_retried_after_a_token_was_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)

        def body() -> Iterator[bytes]:
            yield tokens("partial")
            raise httpx.ReadError("connection reset")

        return httpx.Response(200, headers=SSE, content=body())

    stream = client_for(handle, max_retries=5).stream("flow", "hi")
    assert next(iter(stream)).data == "partial"
    with pytest.raises(IncompleteStreamError):
        stream.until_done()
    assert len(calls) == 1


def test_read_timeout_mid_stream_is_a_timeout_with_partial() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            yield tokens("so far")
            raise httpx.ReadTimeout("timed out", request=request)

        return httpx.Response(200, headers=SSE, content=body())

    with pytest.raises(FlowiseTimeoutError, match="waiting for data from") as info:
        client_for(handle).stream("flow", "hi").until_done()
    assert isinstance(info.value, TimeoutError)
    assert info.value.partial is not None
    assert info.value.partial.text == "so far"


# -- secrets -----------------------------------------------------------------------------------------


def test_api_key_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-very-secret-123"

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {secret}"
        return httpx.Response(500, json={"message": "Error: predictionsServices.buildChatflow - Unauthorized"})

    client = client_for(handle, api_key=secret)
    assert secret not in repr(client)
    assert secret not in repr(client.api_key)
    with caplog.at_level("DEBUG"), pytest.raises(AuthenticationError) as info:
        client.predict("flow", "hi")
    assert secret not in str(info.value)
    assert secret not in repr(info.value.args)
    assert secret not in caplog.text


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWISE_API_KEY", "env-key")
    monkeypatch.setenv("FLOWISE_BASE_URL", "http://example.test:3000/api/v1/")
    client = FlowiseClient()
    assert client.api_key is not None
    assert client.api_key.get_secret_value() == "env-key"
    assert client.base_url == "http://example.test:3000"
