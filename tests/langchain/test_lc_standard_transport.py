"""langchain-tests' standard integration suite against FakeFlowise's in-process transport, sockets disabled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_socket
from _langchain_support import FlowiseStandardConfig, make_fake, transport_clients
from langchain_tests.integration_tests import ChatModelIntegrationTests

FAKE, MAIN, OTHER = make_fake()


class TestChatFlowiseOverTransport(FlowiseStandardConfig, ChatModelIntegrationTests):
    fake, main_flow, other_flow = FAKE, MAIN, OTHER

    @pytest.fixture(autouse=True)
    def _sockets_disabled(self) -> Iterator[None]:
        pytest_socket.disable_socket(allow_unix_socket=True)
        try:
            yield
        finally:
            pytest_socket.enable_socket()

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": self.main_flow, **transport_clients(self.fake)}
