"""langchain-tests' standard unit suite."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.unit_tests import ChatModelUnitTests
from syrupy.assertion import SnapshotAssertion

from flowise_integrations.langchain import ChatFlowise


class TestChatFlowiseUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatFlowise]:
        return ChatFlowise

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "flow-a", "base_url": "http://flowise.test"}

    @property
    def model_override_value(self) -> str:
        return "flow-b"

    @property
    def has_tool_calling(self) -> bool:
        return False  # bind_tools raises on purpose (the flow owns its tools)

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"FLOWISE_API_KEY": "env-key", "FLOWISE_BASE_URL": "http://flowise.env:3000"},
            {"model": "flow-a"},
            {"api_key": "env-key", "base_url": "http://flowise.env:3000"},
        )

    @pytest.mark.xfail(
        reason=(
            "langchain-core 1.7's load(allowed_objects='all') admits only the classes in its own serialization "
            "mapping, so no third-party model can pass the round-trip half of this test; the snapshot half passes "
            "and test_lc_chat_models.py::test_serialization_round_trip loads it with allowed_objects=[ChatFlowise]"
        ),
        raises=ValueError,
        strict=True,
    )
    def test_serdes(self, model: BaseChatModel, snapshot: SnapshotAssertion) -> None:
        super().test_serdes(model, snapshot)
