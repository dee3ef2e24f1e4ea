"""langchain-tests' standard integration suite against FakeFlowise's loopback HTTP server (real sockets)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _langchain_support import FlowiseStandardConfig, make_fake
from langchain_tests.integration_tests import ChatModelIntegrationTests

FAKE, MAIN, OTHER = make_fake()


@pytest.fixture(scope="module", autouse=True)
def _server() -> Iterator[None]:
    with FAKE.serve():
        yield


class TestChatFlowiseOverLoopback(FlowiseStandardConfig, ChatModelIntegrationTests):
    fake, main_flow, other_flow = FAKE, MAIN, OTHER

    @property
    def chat_model_params(self) -> dict[str, Any]:
        assert self.fake.base_url is not None
        return {"model": self.main_flow, "base_url": self.fake.base_url}
