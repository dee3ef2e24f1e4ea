"""``ChatFlowise.with_structured_output``: format instructions on the question, then LangChain's JSON parsers.

A Flowise flow has no tool calling and no JSON mode of its own, so the schema travels the only way that reaches
every flow: as instructions appended to the newest human message (the ``question``). The answer is parsed like
LangChain's own ``json_mode``: a JSON object (code fences allowed); dict schemas stream partial objects, Pydantic
schemas yield the validated object once it is complete.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import HumanMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.prompt_values import ChatPromptValue
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema
from langchain_core.utils.pydantic import is_basemodel_subclass

if TYPE_CHECKING:
    from .chat_models import ChatFlowise

__all__ = ["StructuredMethod", "format_instructions", "structured_runnable", "with_instructions"]

StructuredMethod = Literal["json_schema", "json_mode", "function_calling"]
_JSON_ONLY = "Answer with one JSON object only: no text before or after it, no code fences, no comments."


def format_instructions(json_schema: Mapping[str, Any] | None) -> str:
    """What is appended to the question (the schema itself for ``json_schema``; JSON only for ``json_mode``)."""
    if json_schema is None:
        return _JSON_ONLY
    schema = {k: v for k, v in json_schema.items() if k not in ("title", "description")} or dict(json_schema)
    about = json_schema.get("description") or json_schema.get("title")
    lead = f" ({about})" if isinstance(about, str) and about else ""
    return (
        f"{_JSON_ONLY} The object must conform to this JSON schema{lead}:\n"
        f"{json.dumps(schema, ensure_ascii=False, separators=(',', ':'))}"
    )


def structured_runnable(
    model: ChatFlowise,
    schema: Mapping[str, Any] | type | None,
    method: StructuredMethod,
    include_raw: bool,
) -> Runnable[LanguageModelInput, Any]:
    """The runnable ``with_structured_output`` returns (see the module docstring)."""
    if method not in ("json_schema", "json_mode", "function_calling"):
        raise ValueError(f"method must be 'json_schema', 'json_mode' or 'function_calling', got {method!r}")
    if schema is None and method != "json_mode":
        raise ValueError(f"method={method!r} needs a schema (or use method='json_mode')")
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)  # Pydantic v2 or v1
    json_schema = (
        convert_to_json_schema(dict(schema) if isinstance(schema, Mapping) else schema) if schema is not None else None
    )
    instructions = format_instructions(json_schema if method != "json_mode" else None)
    parser: Runnable[Any, Any] = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()

    prompt: Runnable[LanguageModelInput, ChatPromptValue] = RunnableLambda(
        lambda value: with_instructions(value, model, instructions), name="FlowiseFormatInstructions"
    )
    llm = prompt | model.bind(
        ls_structured_output_format={"kwargs": {"method": method}, "schema": json_schema or {"type": "object"}}
    )
    if not include_raw:
        return llm | parser
    parse = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    fallback = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | parse.with_fallbacks([fallback], exception_key="parsing_error")


def with_instructions(value: LanguageModelInput, model: ChatFlowise, instructions: str) -> ChatPromptValue:
    """``value`` as messages, the instructions appended to the newest human message (or added as one)."""
    messages = list(model._convert_input(value).to_messages())
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if isinstance(message, HumanMessage):
            if isinstance(message.content, str):
                content: Any = f"{message.content}\n\n{instructions}" if message.content else instructions
            else:
                content = [*message.content, {"type": "text", "text": f"\n\n{instructions}"}]
            messages[i] = message.model_copy(update={"content": content})
            return ChatPromptValue(messages=messages)
    return ChatPromptValue(messages=[*messages, HumanMessage(instructions)])
