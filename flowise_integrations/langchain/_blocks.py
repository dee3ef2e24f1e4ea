"""The ``"flowise"`` content-block translator: Flowise extras as standard v1 content blocks.

Registered with ``langchain_core.messages.block_translators`` on import, so ``message.content_blocks`` and
``output_version="v1"`` show, in order:

- ``reasoning`` (thinking / multi-agent steps, from ``additional_kwargs["reasoning_content"]``);
- ``server_tool_call`` + ``server_tool_result`` per tool the flow ran server-side (never ``tool_call``: an
  agent must not run them again);
- the ``text`` block; on a complete message (``invoke``) it carries the sources as ``citation`` annotations;
- on a streamed chunk (or an aggregate of chunks) the sources come as one ``non_standard`` block instead,
  because the text arrived in earlier chunks and citations there would start a second text block.
"""

from __future__ import annotations

from typing import Any, cast

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages import content as types
from langchain_core.messages.block_translators import register_translator

__all__ = ["register", "translate_content", "translate_content_chunk"]


def _citation(doc: dict[str, Any]) -> types.Citation:
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    citation: dict[str, Any] = {"type": "citation", "cited_text": str(doc.get("page_content", ""))}
    url = metadata.get("url") or metadata.get("source")
    if isinstance(url, str) and url:
        citation["url"] = url
    title = metadata.get("title")
    if isinstance(title, str) and title:
        citation["title"] = title
    if metadata:
        citation["extras"] = {"metadata": metadata}
    return cast("types.Citation", citation)


def _tool_blocks(tools: list[Any]) -> list[types.ContentBlock]:
    blocks: list[types.ContentBlock] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            continue
        call_id = f"flowise_tool_{i}"
        args = tool.get("tool_input")
        # built as dicts and cast: langchain-core 1.8 declares more keys as required than 1.7 did
        call = cast(
            "types.ServerToolCall",
            {
                "type": "server_tool_call",
                "id": call_id,
                "name": str(tool.get("tool", "")),
                "args": args if isinstance(args, dict) else {"input": args},
            },
        )
        result = cast(
            "types.ServerToolResult",
            {
                "type": "server_tool_result",
                "tool_call_id": call_id,
                "status": "error" if tool.get("error") else "success",
                "output": tool.get("error") or tool.get("tool_output"),
            },
        )
        blocks += [call, result]
    return blocks


def _translate(message: AIMessage, *, streamed: bool) -> list[types.ContentBlock]:
    if not isinstance(message.content, str):
        raise NotImplementedError  # fall back to langchain-core's best-effort parsing
    metadata = message.response_metadata
    blocks: list[types.ContentBlock] = []
    reasoning = message.additional_kwargs.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        blocks.append(cast("types.ReasoningContentBlock", {"type": "reasoning", "reasoning": reasoning}))
    tools = metadata.get("used_tools")
    if isinstance(tools, list) and tools:
        blocks += _tool_blocks(tools)
    docs = metadata.get("source_documents")
    docs = [d for d in docs if isinstance(d, dict)] if isinstance(docs, list) else []
    if message.content or (docs and not streamed):
        text: dict[str, Any] = {"type": "text", "text": message.content}
        if docs and not streamed:
            text["annotations"] = [_citation(d) for d in docs]
        blocks.append(cast("types.TextContentBlock", text))
    if docs and streamed:
        value = {"type": "flowise_source_documents", "source_documents": docs}
        blocks.append(cast("types.NonStandardContentBlock", {"type": "non_standard", "value": value}))
    return blocks


def translate_content(message: AIMessage) -> list[types.ContentBlock]:
    """Standard blocks of a complete Flowise message (sources as citations on the text)."""
    return _translate(message, streamed=isinstance(message, AIMessageChunk))


def translate_content_chunk(message: AIMessageChunk) -> list[types.ContentBlock]:
    """Standard blocks of a streamed chunk or an aggregate of chunks (sources as ``non_standard``)."""
    return _translate(message, streamed=True)


def register() -> None:
    """Register the translator under the ``"flowise"`` provider (idempotent)."""
    register_translator("flowise", translate_content, translate_content_chunk)


register()
