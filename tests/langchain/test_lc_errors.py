"""Every core error surfaces as a class that is both the core's and langchain-core's matching error."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from langchain_core import exceptions as lc

import flowise_integrations as core
from flowise_integrations.langchain import ChatFlowise, FlowiseModelError, to_model_error
from flowise_integrations.testing import FakeFlow, FakeFlowise

pytestmark = pytest.mark.usefixtures("no_sockets")

MakeLLM = Callable[..., ChatFlowise]
TOKENS = ["one", " two", " three", " four"]


def _body(message: str) -> bytes:
    return json.dumps({"statusCode": 0, "success": False, "message": message, "stack": {}}).encode()


@pytest.mark.parametrize(
    ("status", "core_cls", "lc_cls"),
    [
        (400, core.BadRequestError, lc.ModelInvalidRequestError),
        (401, core.AuthenticationError, lc.ModelAuthenticationError),
        (403, core.PermissionDeniedError, lc.ModelPermissionDeniedError),
        (404, core.NotFoundError, lc.ModelNotFoundError),
        (413, core.PayloadTooLargeError, lc.ModelInvalidRequestError),
        (429, core.RateLimitError, lc.ModelRateLimitError),
        (500, core.InternalServerError, lc.ModelAPIError),
        (503, core.InternalServerError, lc.ModelAPIError),
        (418, core.FlowiseAPIError, lc.ModelAPIError),
    ],
)
@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke", "astream"])
async def test_http_errors_map_to_both_trees(
    fake: FakeFlowise, make_llm: MakeLLM, status: int, core_cls: type, lc_cls: type, mode: str
) -> None:
    flow = fake.add_flow(FakeFlow(http_errors=[(status, {"Retry-After": "7"}, _body(f"refused with {status}"))]))
    llm = make_llm(flow, max_retries=0, api_key="sk-never-shown")
    with pytest.raises(core_cls) as caught:
        if mode == "invoke":
            llm.invoke("hi")
        elif mode == "stream":
            list(llm.stream("hi"))
        elif mode == "ainvoke":
            await llm.ainvoke("hi")
        else:
            [c async for c in llm.astream("hi")]
    error = caught.value
    assert isinstance(error, lc_cls) and isinstance(error, lc.ModelError)
    assert error.status_code == status
    assert error.message == f"refused with {status}"
    assert "sk-never-shown" not in str(error) + repr(error)
    assert isinstance(error.__cause__, core_cls) and not isinstance(error.__cause__, lc.ModelError)
    if status == 429:
        assert error.retry_after == 7.0


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_in_band_error_keeps_the_partial_text(fake: FakeFlowise, make_llm: MakeLLM, mode: str) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, error="The LLM node failed", error_after=2))
    llm = make_llm(flow)
    received: list[str] = []
    with pytest.raises(core.FlowExecutionError) as caught:
        if mode == "stream":
            for chunk in llm.stream("hi"):
                received.append(chunk.text)
        else:
            async for chunk in llm.astream("hi"):
                received.append(chunk.text)
    error = caught.value
    assert isinstance(error, lc.ModelAPIError) and not error.is_retryable
    assert "The LLM node failed" in error.message
    assert "".join(received) == error.partial.text == "one two"


def test_in_band_error_on_invoke(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, error="The LLM node failed"))
    with pytest.raises(core.FlowiseAPIError, match="The LLM node failed") as caught:
        make_llm(flow).invoke("hi")
    assert isinstance(caught.value, lc.ModelError)


def test_in_band_unauthorized_is_an_authentication_error(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, error="Unauthorized", error_after=1))
    with pytest.raises(lc.ModelAuthenticationError) as caught:
        list(make_llm(flow).stream("hi"))
    assert isinstance(caught.value, core.AuthenticationError)


def test_dropped_stream_is_incomplete_with_partial(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, drop_after=3))
    with pytest.raises(core.IncompleteStreamError) as caught:
        list(make_llm(flow).stream("hi"))
    assert isinstance(caught.value, lc.ModelConnectionError)
    assert caught.value.partial is not None and caught.value.partial.text.startswith("one two")


def test_lost_answer(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, lose_tokens=True))
    with pytest.raises(core.LostAnswerError) as caught:
        list(make_llm(flow).stream("hi"))
    assert isinstance(caught.value, lc.ModelAPIError) and not caught.value.is_retryable


def _mock(handler: Callable[[httpx.Request], httpx.Response]) -> ChatFlowise:
    transport = httpx.MockTransport(handler)
    return ChatFlowise(
        model="flow",
        base_url="http://flowise.test",
        max_retries=0,
        http_client=httpx.Client(transport=transport),
        http_async_client=httpx.AsyncClient(transport=transport),
    )


@pytest.mark.parametrize(
    ("exc", "core_cls", "lc_cls"),
    [
        (httpx.ConnectError("refused"), core.FlowiseConnectionError, lc.ModelConnectionError),
        (httpx.ConnectTimeout("slow"), core.FlowiseTimeoutError, lc.ModelTimeoutError),
        (httpx.ReadTimeout("slow"), core.FlowiseTimeoutError, lc.ModelTimeoutError),
    ],
)
async def test_transport_errors(exc: Exception, core_cls: type, lc_cls: type) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    llm = _mock(fail)
    for call in (lambda: llm.invoke("hi"), lambda: list(llm.stream("hi"))):
        with pytest.raises(core_cls) as caught:
            call()
        assert isinstance(caught.value, lc_cls)
    with pytest.raises(lc_cls):
        await llm.ainvoke("hi")


def test_html_reply_is_a_protocol_error() -> None:
    llm = _mock(lambda r: httpx.Response(200, headers={"content-type": "text/html"}, text="<html>UI</html>"))
    with pytest.raises(core.FlowiseProtocolError, match="base_url") as caught:
        llm.invoke("hi")
    assert isinstance(caught.value, lc.ModelError) and isinstance(caught.value, FlowiseModelError | core.FlowiseError)


def test_to_model_error_keeps_attributes_and_is_idempotent() -> None:
    partial = core.Prediction(text="so far")
    original = core.RateLimitError("slow down", retry_after=3.0, status_code=429, body={"m": 1}, partial=partial)
    twin = to_model_error(original)
    assert isinstance(twin, core.RateLimitError) and isinstance(twin, lc.ModelRateLimitError)
    assert (twin.message, twin.retry_after, twin.status_code, twin.body, twin.partial) == (
        "slow down", 3.0, 429, {"m": 1}, partial,
    )  # fmt: skip
    assert str(twin) == str(original)
    assert to_model_error(twin) is twin
    assert isinstance(to_model_error(core.FlowiseError("x")), FlowiseModelError)
