"""FlowiseLLM's construction, metadata, secrets, message conversion and connection handling."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest
from _llama_index_support import ANSWER, CONVERSATION, SOURCES, Collector
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock, ThinkingBlock, ToolCallBlock
from llama_index.core.instrumentation.events.llm import LLMChatStartEvent
from llama_index.core.llms import LLM
from llama_index.core.llms.custom import CustomLLM
from pydantic import SecretStr

from flowise_integrations.llama_index import FlowiseLLM
from flowise_integrations.llama_index._mapping import source_nodes, to_turns
from flowise_integrations.models import SourceDocument
from flowise_integrations.testing import FakeFlow, FakeFlowise

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
EIGHT = ("chat", "stream_chat", "achat", "astream_chat", "complete", "stream_complete", "acomplete", "astream_complete")


def _llm(fake: FakeFlowise, flow_id: str, **kwargs: object) -> FlowiseLLM:
    return FlowiseLLM(
        flow_id,
        base_url="http://flowise.test",
        http_client=httpx.Client(transport=fake.transport()),
        async_http_client=httpx.AsyncClient(transport=fake.async_transport()),
        **kwargs,  # type: ignore[arg-type]
    )


def test_is_a_custom_llm_overriding_every_default() -> None:
    assert issubclass(FlowiseLLM, CustomLLM) and issubclass(FlowiseLLM, LLM)
    for name in EIGHT:
        assert name in FlowiseLLM.__dict__, f"{name} must not be CustomLLM's default"
        assert getattr(FlowiseLLM, name) is not getattr(CustomLLM, name)
    for name in ("achat", "astream_chat", "acomplete", "astream_complete"):
        assert asyncio.iscoroutinefunction(getattr(FlowiseLLM, name))


def test_metadata() -> None:
    llm = FlowiseLLM("flow-1", context_window=8000, num_output=500)
    meta = llm.metadata
    assert (meta.is_chat_model, meta.is_function_calling_model, meta.model_name) == (True, False, "flow-1")
    assert (meta.context_window, meta.num_output) == (8000, 500)
    assert FlowiseLLM.class_name() == "FlowiseLLM"


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWISE_BASE_URL", "http://flowise.example:3000/api/v1/")
    monkeypatch.setenv("FLOWISE_API_KEY", "env-key")
    llm = FlowiseLLM("flow-1")
    assert llm.base_url == "http://flowise.example:3000"
    assert isinstance(llm.api_key, SecretStr) and llm.api_key.get_secret_value() == "env-key"
    explicit = FlowiseLLM("flow-1", base_url="https://other", api_key="explicit")
    assert explicit.base_url == "https://other" and explicit.api_key is not None
    assert explicit.api_key.get_secret_value() == "explicit"
    monkeypatch.delenv("FLOWISE_API_KEY")
    monkeypatch.delenv("FLOWISE_BASE_URL")
    assert FlowiseLLM("flow-1").api_key is None and FlowiseLLM("flow-1").base_url == "http://localhost:3000"
    with pytest.raises(ValueError, match="http"):
        FlowiseLLM("flow-1", base_url="localhost:3000")


def test_construction_is_lazy() -> None:
    llm = FlowiseLLM("flow-1")  # its cost is measured in benchmarks/llama_index_overhead.py, not asserted here
    assert llm._clients.sync is None and not llm._clients.by_loop


async def test_the_key_never_leaks(fake: FakeFlowise, events: Collector) -> None:
    flow = fake.add_flow(FakeFlow(api_key="sk-very-secret"))
    llm = _llm(fake, flow, api_key="sk-very-secret", headers={"X-Gateway-Token": "gw-secret"})
    llm.chat(CONVERSATION)
    assert fake.last_request.headers["authorization"] == "Bearer sk-very-secret"
    assert fake.last_request.headers["x-gateway-token"] == "gw-secret"
    start = events.of(LLMChatStartEvent)[0]
    for text in (
        repr(llm),
        str(llm),
        str(llm.to_dict()),
        llm.to_json(),
        str(llm.to_payload()),
        str(start.model_dump()),
        repr(llm.client),
    ):
        assert "sk-very-secret" not in text and "gw-secret" not in text


def test_image_blocks_become_uploads(fake: FakeFlowise, rag_flow: str) -> None:
    llm = _llm(fake, rag_flow)
    message = ChatMessage(role="user", blocks=[
        TextBlock(text="What is in these?"),
        ImageBlock(url="https://example.com/cat.jpg"),
        ImageBlock(image=PNG),
        ImageBlock(url="data:image/png;base64,iVBOR", image_mimetype="image/png"),
    ])  # fmt: skip
    assert llm.chat([message]).message.content == ANSWER
    body = fake.last_request.json
    assert body["question"] == "What is in these?"
    assert body["uploads"] == [
        {"type": "url", "name": "cat.jpg", "mime": "image/jpeg", "data": "https://example.com/cat.jpg"},
        {
            "type": "file",
            "name": "image.png",
            "mime": "image/png",
            "data": "data:image/png;base64," + base64.b64encode(PNG).decode(),
        },
        {"type": "file", "name": "image.png", "mime": "image/png", "data": "data:image/png;base64,iVBOR"},
    ]


def test_message_conversion() -> None:
    turns = to_turns([
        ChatMessage(role="developer", content="rules"),
        ChatMessage(role="user", blocks=[TextBlock(text="a"), TextBlock(text="b")]),
        ChatMessage(role="assistant", blocks=[ThinkingBlock(content="hmm"), TextBlock(text="ok"),
                                              ToolCallBlock(tool_name="x", tool_kwargs={})]),
        ChatMessage(role="tool", content="42"),
    ])  # fmt: skip
    assert [(t.role, t.content) for t in turns] == [
        ("system", "rules"),
        ("user", "a\nb"),
        ("assistant", "ok"),
        ("user", "42"),
    ]
    from llama_index.core.base.llms.types import AudioBlock

    with pytest.raises(ValueError, match="AudioBlock"):
        to_turns([ChatMessage(role="user", blocks=[AudioBlock(audio=b"RIFF....", format="wav")])])


def test_conversation_must_end_with_a_user_turn(fake: FakeFlowise, rag_flow: str) -> None:
    llm = _llm(fake, rag_flow)
    with pytest.raises(ValueError, match="user"):
        llm.chat([ChatMessage(role="system", content="only a system prompt")])
    with pytest.raises(ValueError, match="assistant"):
        llm.chat([ChatMessage(role="user", content="q"), ChatMessage(role="assistant", content="a")])


def test_per_call_options(fake: FakeFlowise, rag_flow: str) -> None:
    other = fake.add_flow(FakeFlow(answer="Other flow."))
    llm = _llm(fake, rag_flow, override_config={"temperature": 0.1, "topK": 2})
    response = llm.chat(CONVERSATION, chatflow_id=other, override_config={"topK": 5}, form={"x": 1},
                        extra_body={"custom": True}, formatted=True, some_llama_index_kwarg=1)  # fmt: skip
    assert response.message.content == "Other flow."
    assert fake.last_request.path == f"/api/v1/prediction/{other}"
    body = fake.last_request.json
    assert body["overrideConfig"] == {"temperature": 0.1, "topK": 5}
    assert body["form"] == {"x": 1} and body["custom"] is True
    assert "question" not in body and "history" not in body  # the form is the input: Flowise refuses both
    assert response.additional_kwargs["chatflow_id"] == other


def test_source_nodes() -> None:
    docs = [SourceDocument.model_validate(d) for d in SOURCES] + [SourceDocument(page_content="x", id="doc-7")]
    nodes = source_nodes(docs)
    assert [n.node.get_content() for n in nodes] == [d["pageContent"] for d in SOURCES] + ["x"]
    assert nodes[0].node.metadata == SOURCES[0]["metadata"] and nodes[2].node.node_id == "doc-7"


async def test_one_async_client_per_event_loop(fake: FakeFlowise, rag_flow: str) -> None:
    with fake.serve() as base_url:
        llm = FlowiseLLM(rag_flow, base_url=base_url)
        assert (await llm.achat(CONVERSATION)).message.content == ANSWER
        first = llm.async_client

        def other_loop() -> str:  # e.g. a second asyncio.run() in a notebook: the first loop's client is not reused
            async def go() -> str:
                assert llm.async_client is not first
                return str((await llm.achat(CONVERSATION)).message.content)

            return asyncio.run(go())

        assert await asyncio.to_thread(other_loop) == ANSWER
        assert llm.async_client is first
        await llm.aclose()


async def test_copies_and_pickles_start_without_connections(
    fake: FakeFlowise, rag_flow: str, caplog: pytest.LogCaptureFixture
) -> None:
    import copy
    import pickle

    with fake.serve() as base_url:
        llm = FlowiseLLM(rag_flow, base_url=base_url, api_key="k", session_id="s")
        llm.chat(CONVERSATION)
        await llm.achat(CONVERSATION)
        for clone in (copy.deepcopy(llm), pickle.loads(pickle.dumps(llm)), llm.model_copy()):
            assert clone.chatflow_id == rag_flow and clone.session_id == "s"
            assert clone.api_key is not None and clone.api_key.get_secret_value() == "k"
            assert clone.chat(CONVERSATION).message.content == ANSWER
            clone.close()
        assert "unpickleable" not in caplog.text
        llm.close()
        await llm.aclose()


@pytest.mark.parametrize("aio", [False, True], ids=["stream_chat", "astream_chat"])
async def test_a_recovered_answer_says_so(aio: bool) -> None:
    fake = FakeFlowise(api_key="workspace-key")
    flow = fake.add_flow(FakeFlow(answer=ANSWER, lose_tokens=True))  # queue mode's bug: metadata + end, no token
    llm = _llm(fake, flow, api_key="workspace-key")
    responses = [r async for r in await llm.astream_chat(CONVERSATION)] if aio else list(llm.stream_chat(CONVERSATION))
    final = responses[-1]
    assert final.message.content == ANSWER  # completed from the message Flowise stored
    assert final.additional_kwargs["recovered"] is True and final.raw["recovered"] is True
    assert "".join(r.delta or "" for r in responses) == ANSWER


def _frame(event: str, data: object) -> bytes:
    return b"message:\ndata:" + json.dumps({"event": event, "data": data}).encode() + b"\n\n"


@pytest.mark.parametrize("aio", [False, True], ids=["stream_chat", "astream_chat"])
async def test_a_corrected_answer_replaces_the_streamed_text(aio: bool) -> None:
    """Queue mode's redelivered job (recorded on a real 3.1.4): three tokens, a second ``start``, the whole answer
    again. The client corrects it from the stored message; the wing's responses follow the correction."""
    words = ANSWER.split(" ")
    tokens = [words[0], *(f" {w}" for w in words[1:])]
    stream = _frame("start", "") + b"".join(_frame("token", t) for t in tokens[:3]) + _frame("start", "")
    stream += b"".join(_frame("token", t) for t in tokens)
    stream += _frame("metadata", {"chatId": "c1", "chatMessageId": "m1"}) + _frame("end", "[DONE]")

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream)
        return httpx.Response(200, json=[{"id": "m1", "role": "apiMessage", "content": ANSWER}])

    transport = httpx.MockTransport(handle)
    llm = FlowiseLLM("flow", base_url="http://flowise.test", api_key="k", http_client=httpx.Client(transport=transport),
                     async_http_client=httpx.AsyncClient(transport=transport))  # fmt: skip
    responses = [r async for r in await llm.astream_chat(CONVERSATION)] if aio else list(llm.stream_chat(CONVERSATION))
    (corrected,) = [r for r in responses if "correction" in r.additional_kwargs]
    assert corrected.additional_kwargs["correction"] == {"text": ANSWER, "reason": "repeated"}
    assert corrected.message.content == ANSWER and corrected.delta == ""
    final = responses[-1]
    assert final.message.content == ANSWER and final.additional_kwargs["recovered"] is True


async def test_an_answer_no_token_carried_is_the_last_delta(fake: FakeFlowise) -> None:
    """An Iteration ending an agentflow streams no token (as on the real server); the answer still arrives."""
    from flowise_integrations.testing.nodes import LLM, Iteration

    flow = fake.add_flow(FakeFlow(kind="agentflow", nodes=[
        Iteration(items=["alpha", "beta"], body=[LLM(answer="item {{ $iteration }}")])
    ]))  # fmt: skip
    llm = _llm(fake, flow)
    whole = llm.chat(CONVERSATION).message.content
    assert whole == "item alpha\nitem beta"
    for responses in (list(llm.stream_chat(CONVERSATION)), [r async for r in await llm.astream_chat(CONVERSATION)]):
        assert "".join(r.delta or "" for r in responses) == whole == responses[-1].message.content
