"""ChatFlowise and the tools pickle and deep-copy at any time, even after calls (clients are rebuilt lazily)."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
from collections.abc import Iterator

import pytest
from _langchain_support import transport_clients

from flowise_integrations.langchain import ChatFlowise, FlowiseTool, FlowiseToolkit
from flowise_integrations.testing import FakeFlow, FakeFlowise


@pytest.fixture
def served() -> Iterator[tuple[FakeFlowise, str, str]]:
    fake = FakeFlowise()
    flow = fake.add_flow(FakeFlow(answer="Pickled and back."))
    with fake.serve() as base_url:
        yield fake, flow, base_url


def _ask(llm: ChatFlowise) -> str:
    return llm.invoke("hi").text


async def test_pickle_after_sync_and_async_calls(served: tuple[FakeFlowise, str, str]) -> None:
    _, flow, base_url = served
    llm = ChatFlowise(model=flow, base_url=base_url, api_key="secret-key", chat_id="c-1", deadline=30)
    assert llm.invoke("hi").text == "Pickled and back."
    assert (await llm.ainvoke("hi")).text == "Pickled and back."
    clone = pickle.loads(pickle.dumps(llm))
    assert clone.model_dump() == llm.model_dump() and clone is not llm
    assert clone._client is None and clone._loop_clients is None  # built again on first use
    assert clone.api_key is not None and clone.api_key.get_secret_value() == "secret-key"
    assert clone.invoke("again").text == "Pickled and back."
    assert (await clone.ainvoke("again")).text == "Pickled and back."


def test_a_pickled_model_answers_in_another_process(served: tuple[FakeFlowise, str, str]) -> None:
    _, flow, base_url = served
    llm = ChatFlowise(model=flow, base_url=base_url)
    llm.invoke("warm up")  # clients built: the pickle must not carry them
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_ask, (llm,)) == "Pickled and back."


def test_deepcopy_shares_your_http_clients_and_rebuilds_ours() -> None:
    fake = FakeFlowise()
    flow = fake.add_flow(FakeFlow(answer="copy"))
    llm = ChatFlowise(model=flow, **transport_clients(fake))
    llm.invoke("hi")
    for clone in (copy.deepcopy(llm), llm.model_copy(deep=True)):
        assert clone.http_client is llm.http_client and clone.http_async_client is llm.http_async_client
        assert clone._client is None and llm._client is not None
        assert clone.invoke("hi").text == "copy"
    own = ChatFlowise(model=flow, base_url="http://127.0.0.1:9")
    assert own.client is not None
    assert copy.deepcopy(own)._client is None


def test_pickled_user_http_clients_are_left_behind() -> None:
    fake = FakeFlowise()
    llm = ChatFlowise(model=fake.add_flow(FakeFlow()), **transport_clients(fake))
    llm.invoke("hi")
    clone = pickle.loads(pickle.dumps(llm))
    assert clone.http_client is None and clone.http_async_client is None and clone.base_url == llm.base_url


def test_tools_and_toolkits_pickle_and_copy() -> None:
    fake = FakeFlowise()
    flow = fake.add_flow(FakeFlow(answer="tool answer"))
    tool = FlowiseTool(name="t", description="d", chatflow_id=flow, session_id="s", **transport_clients(fake))
    assert tool.invoke({"question": "q"}) == "tool answer"
    assert copy.deepcopy(tool).invoke({"question": "q"}) == "tool answer"
    again = pickle.loads(pickle.dumps(tool))
    assert (again.name, again.chatflow_id, again.session_id, again.http_client) == ("t", flow, "s", None)
    toolkit = FlowiseToolkit(base_url="http://flowise.test")
    toolkit.get_tools()
    assert pickle.loads(pickle.dumps(toolkit)).flows == []
