"""Every core error has a LangChain twin that is still the core class, for the model and for tools."""

from __future__ import annotations

import inspect

import pytest

from flowise_integrations import errors
from flowise_integrations.langchain._errors import to_model_error
from flowise_integrations.langchain._tool_errors import to_tool_error

CORE = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.FlowiseError) and cls.__module__ == errors.__name__
]


@pytest.mark.parametrize("core", CORE, ids=lambda c: c.__name__)
@pytest.mark.parametrize("twin", [to_model_error, to_tool_error], ids=["model", "tool"])
def test_the_twin_of_every_core_error_is_still_that_error(core: type[errors.FlowiseError], twin: object) -> None:
    original = core("boom")
    made = twin(original)  # type: ignore[operator]
    assert type(made) is not core and isinstance(made, core), (core, type(made))
    assert str(made) == str(original)
