"""``FlowiseQueryEngine``: a flow that retrieves and answers, as a LlamaIndex query engine (and agent tool)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import Any

from llama_index.core.base.llms.generic_utils import prompt_to_messages
from llama_index.core.base.llms.types import ChatResponse
from llama_index.core.base.response.schema import RESPONSE_TYPE, AsyncStreamingResponse, Response, StreamingResponse
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.instrumentation import Dispatcher, get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.events.query import QueryEndEvent, QueryStartEvent
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.schema import NodeWithScore, QueryBundle, QueryType
from pydantic import Field

from ._mapping import source_nodes
from .llms import FlowiseLLM

__all__ = ["FlowiseQueryEngine"]

dispatcher: Dispatcher = get_dispatcher(__name__)

_METADATA_KEYS = (
    "chatflow_id", "chat_id", "chat_message_id", "session_id", "used_tools", "agent_reasoning", "follow_up_prompts",
    "finish_reason",
)  # fmt: skip


class FlowiseQueryEngine(CustomQueryEngine):
    """A Flowise flow (retrieval QA, an agent...) as a query engine.

    ``query`` returns a ``Response`` whose ``source_nodes`` are the flow's ``sourceDocuments`` as ``TextNode``s
    and whose ``metadata`` holds ``used_tools``, ``agent_reasoning`` and the ids. With ``streaming=True`` it
    returns a ``StreamingResponse`` (``AsyncStreamingResponse`` from ``aquery``); its ``source_nodes`` and
    ``metadata`` fill in once the stream has been consumed. Wrap it in ``QueryEngineTool`` to hand the flow to
    a LlamaIndex agent.

    Example:
        >>> engine = FlowiseQueryEngine(chatflow_id="...", base_url="http://localhost:3000")  # doctest: +SKIP
        >>> response = engine.query("What does the handbook say about leave?")               # doctest: +SKIP
        >>> [n.node.get_content() for n in response.source_nodes]                             # doctest: +SKIP
    """

    llm: FlowiseLLM = Field(description="The LLM that talks to the flow.")
    streaming: bool = Field(default=False, description="Return streaming responses.")

    def __init__(
        self,
        llm: FlowiseLLM | None = None,
        *,
        streaming: bool = False,
        callback_manager: CallbackManager | None = None,
        **llm_kwargs: Any,
    ) -> None:
        """Pass a ``FlowiseLLM``, or its arguments (``chatflow_id``, ``base_url``, ``api_key``...)."""
        if llm is None:
            if callback_manager is not None:
                llm_kwargs.setdefault("callback_manager", callback_manager)
            llm = FlowiseLLM(**llm_kwargs)
        elif llm_kwargs:
            raise TypeError(f"pass either llm or FlowiseLLM arguments, not both: {sorted(llm_kwargs)}")
        super().__init__(llm=llm, streaming=streaming, callback_manager=callback_manager or CallbackManager([]))

    @classmethod
    def class_name(cls) -> str:
        return "FlowiseQueryEngine"

    # BaseQueryEngine's query/aquery, which (unlike CustomQueryEngine's) dispatch QueryStartEvent/QueryEndEvent.
    def query(self, str_or_query_bundle: QueryType) -> RESPONSE_TYPE:
        dispatcher.event(QueryStartEvent(query=str_or_query_bundle))
        bundle = _bundle(str_or_query_bundle)
        with self.callback_manager.as_trace("query"):
            response = self._query(bundle)
        dispatcher.event(QueryEndEvent(query=bundle, response=response))
        return response

    async def aquery(self, str_or_query_bundle: QueryType) -> RESPONSE_TYPE:
        dispatcher.event(QueryStartEvent(query=str_or_query_bundle))
        bundle = _bundle(str_or_query_bundle)
        with self.callback_manager.as_trace("query"):
            response = await self._aquery(bundle)
        dispatcher.event(QueryEndEvent(query=bundle, response=response))
        return response

    def _query(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        with self.callback_manager.event(
            CBEventType.QUERY, payload={EventPayload.QUERY_STR: query_bundle.query_str}
        ) as event:
            response: RESPONSE_TYPE = self.custom_query(query_bundle.query_str)
            event.on_end(payload={EventPayload.RESPONSE: response})
        return response

    async def _aquery(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        with self.callback_manager.event(
            CBEventType.QUERY, payload={EventPayload.QUERY_STR: query_bundle.query_str}
        ) as event:
            response: RESPONSE_TYPE = await self.acustom_query(query_bundle.query_str)
            event.on_end(payload={EventPayload.RESPONSE: response})
        return response

    def custom_query(self, query_str: str) -> Response | StreamingResponse:
        """Ask the flow."""
        messages = prompt_to_messages(query_str)
        if not self.streaming:
            return _response(self.llm.chat(messages))
        nodes: list[NodeWithScore] = []
        metadata: dict[str, Any] = {}
        return StreamingResponse(
            response_gen=_deltas(self.llm.stream_chat(messages), nodes, metadata),
            source_nodes=nodes,
            metadata=metadata,
        )

    async def acustom_query(self, query_str: str) -> Response | AsyncStreamingResponse:
        """Ask the flow, natively async."""
        messages = prompt_to_messages(query_str)
        if not self.streaming:
            return _response(await self.llm.achat(messages))
        nodes: list[NodeWithScore] = []
        metadata: dict[str, Any] = {}
        return AsyncStreamingResponse(
            response_gen=_adeltas(await self.llm.astream_chat(messages), nodes, metadata),
            source_nodes=nodes,
            metadata=metadata,
        )


def _bundle(query: QueryType) -> QueryBundle:
    return QueryBundle(query) if isinstance(query, str) else query


def _metadata(extra: dict[str, Any]) -> dict[str, Any]:
    return {key: extra.get(key) for key in _METADATA_KEYS}


def _response(chat: ChatResponse) -> Response:
    extra = chat.additional_kwargs
    return Response(chat.message.content or "", source_nodes(extra.get("source_documents") or []), _metadata(extra))


def _fill(chat: ChatResponse, nodes: list[NodeWithScore], metadata: dict[str, Any]) -> None:
    extra = chat.additional_kwargs
    if "finish_reason" in extra:  # the final response
        nodes.extend(source_nodes(extra.get("source_documents") or []))
        metadata.update(_metadata(extra))


def _deltas(
    responses: Generator[ChatResponse, None, None], nodes: list[NodeWithScore], metadata: dict[str, Any]
) -> Generator[str, None, None]:
    for chat in responses:
        if chat.delta:
            yield chat.delta
        _fill(chat, nodes, metadata)


async def _adeltas(
    responses: AsyncGenerator[ChatResponse, None], nodes: list[NodeWithScore], metadata: dict[str, Any]
) -> AsyncGenerator[str, None]:
    async for chat in responses:
        if chat.delta:
            yield chat.delta
        _fill(chat, nodes, metadata)
