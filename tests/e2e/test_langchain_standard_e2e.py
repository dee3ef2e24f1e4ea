"""langchain-tests' standard ``ChatModelIntegrationTests``, once, against the real Flowise 3.1.4.

The model is ``ChatFlowise`` on the ``llm_chain`` flow (a classic chatflow: it reports no token usage, so
``returns_usage_metadata`` is off); ``model_override_value`` is the ``agentflow_v2_llm`` flow (2.x: ``conversation_chain``). Capabilities are the
ones the LangChain wing declares for itself (no tool calling or structured output: the flow owns its tools; image
content becomes Flowise uploads).
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
import pytest
from harness import RealFlowiseState

pytest.importorskip("langchain_tests")
lc = pytest.importorskip("flowise_integrations.langchain")

from langchain_tests.integration_tests import ChatModelIntegrationTests  # noqa: E402

pytestmark = pytest.mark.timeout(120)

# test_image_inputs downloads a sample image (httpx.get) before calling the model; serve a 1x1 PNG instead so
# the suite needs no internet access.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63fccf"
    "c0500f000485018084a98c210000000049454e44ae426082"
)


class TestChatFlowiseAgainstRealFlowise(ChatModelIntegrationTests):
    state: ClassVar[RealFlowiseState | None] = None

    @pytest.fixture(autouse=True)
    def _real_server(self, real_flowise: RealFlowiseState, monkeypatch: pytest.MonkeyPatch) -> None:
        type(self).state = real_flowise

        def fake_get(url: str, **kwargs: Any) -> httpx.Response:
            return httpx.Response(200, content=PNG, request=httpx.Request("GET", url))

        monkeypatch.setattr("langchain_tests.integration_tests.chat_models.httpx.get", fake_get)

    @property
    def chat_model_class(self) -> type[Any]:
        return lc.ChatFlowise  # type: ignore[no-any-return]

    @property
    def chat_model_params(self) -> dict[str, Any]:
        state = type(self).state
        assert state is not None
        return {"model": state.flows["llm_chain"], "base_url": state.base_url, "api_key": state.api_key}

    @property
    def model_override_value(self) -> str:
        state = type(self).state
        assert state is not None
        # any other flow answering the same; 2.x has no agentflow v2, its conversation chain does as well
        return state.flows["agentflow_v2_llm" if state.major >= 3 else "conversation_chain"]

    @property
    def has_tool_calling(self) -> bool:
        return False  # bind_tools raises on purpose: the flow owns its tools (declared, not auto-detected)

    @property
    def has_structured_output(self) -> bool:
        # with_structured_output parses the flow's answer, and the fake LLM behind these flows answers canned
        # text, never a schema's JSON; structured output is covered over the emulator (tests/langchain/)
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return False  # llm_chain is a classic chatflow: Flowise reports usage for agentflows only

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True
