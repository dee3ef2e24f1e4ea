"""Shared fixtures for the LangChain wing: a FakeFlowise, models wired to it over its in-process transports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_socket
from _langchain_support import transport_clients

from flowise_integrations.langchain import ChatFlowise
from flowise_integrations.testing import FakeFlowise


@pytest.fixture
def no_sockets() -> Iterator[None]:
    """pytest-socket's ``--disable-socket`` for one test (unix sockets stay allowed for the event loop)."""
    pytest_socket.disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        pytest_socket.enable_socket()


@pytest.fixture
def fake() -> FakeFlowise:
    return FakeFlowise()


@pytest.fixture
def make_llm(fake: FakeFlowise) -> Callable[..., ChatFlowise]:
    """``make_llm(flow_id, **fields)``: a ChatFlowise talking to ``fake`` over its transports."""

    def make(flow_id: str, **fields: Any) -> ChatFlowise:
        return ChatFlowise(model=flow_id, **{**transport_clients(fake), **fields})

    return make
