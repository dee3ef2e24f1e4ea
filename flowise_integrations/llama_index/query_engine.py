"""``FlowiseQueryEngine``: a flow that retrieves and answers, as a LlamaIndex query engine (and agent tool)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

from llama_index.core.base.llms.generic_utils import prompt_to_messages
from llama_index.core.base.llms.types import ChatResponse
from llama_index.core.base.response.schema import RESPONSE_TYPE, AsyncStreamingResponse, Response, StreamingResponse
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.instrumentation import Dispatcher, get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.events.query import QueryEndEvent, QueryStartEvent
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.schema import NodeWithScore, QueryBundle, QueryType
from pydantic import Field, PrivateAttr

from flowise_integrations.hitl import Interrupt

from ._mapping import source_nodes
from .llms import FlowiseLLM

__all__ = ["FlowiseQueryEngine"]

dispatcher: Dispatcher = get_dispatcher(__name__)

_METADATA_KEYS = (
    "chatflow_id", "chat_id", "chat_message_id", "session_id", "used_tools", "agent_reasoning", "follow_up_prompts",
    "finish_reason", "interrupt", "usage", "recovered", "execution_id", "agent_flow_status",
)  # fmt: skip


class FlowiseQueryEngine(CustomQueryEngine):
    """A Flowise flow (retrieval QA, an agent...) as a query engine.

    ``query`` returns a ``Response`` whose ``source_nodes`` are the flow's ``sourceDocuments`` as ``TextNode``s
    and whose ``metadata`` holds ``used_tools``, ``agent_reasoning`` and the ids. With ``streaming=True`` it
    returns a ``StreamingResponse`` (``AsyncStreamingResponse`` from ``aquery``); its ``source_nodes`` and
    ``metadata`` fill in once the stream has been consumed. Wrap it in ``QueryEngineTool`` to hand the flow to
    a LlamaIndex agent.

    Human in the loop: an agentflow that stops for a human answers with ``metadata["finish_reason"] ==
    "stopped"`` and the typed request in ``metadata["interrupt"]``; :meth:`resume` (or :meth:`aresume`) answers
    it and returns the resumed run's response. ``metadata`` also holds the billable ``usage`` and ``recovered``.

    Example:
        >>> engine = FlowiseQueryEngine(chatflow_id="...", base_url="http://localhost:3000")  # doctest: +SKIP
        >>> response = engine.query("What does the handbook say about leave?")               # doctest: +SKIP
        >>> [n.node.get_content() for n in response.source_nodes]                             # doctest: +SKIP
    """

    llm: FlowiseLLM = Field(description="The LLM that talks to the flow.")
    streaming: bool = Field(default=False, description="Return streaming responses.")

    _last_interrupt: Interrupt | None = PrivateAttr(default=None)

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
            return self._response(self.llm.chat(messages))
        return self._streaming(self.llm.stream_chat(messages))

    async def acustom_query(self, query_str: str) -> Response | AsyncStreamingResponse:
        """Ask the flow, natively async."""
        messages = prompt_to_messages(query_str)
        if not self.streaming:
            return self._response(await self.llm.achat(messages))
        return self._astreaming(await self.llm.astream_chat(messages))

    # -- human in the loop ------------------------------------------------------------------------------

    @property
    def last_interrupt(self) -> Interrupt | None:
        """What the latest response of this engine stopped for (``None`` once a run finished)."""
        return self._last_interrupt

    def resume(
        self, approve: bool, feedback: str | None = None, *, interrupt: Interrupt | None = None
    ) -> Response | StreamingResponse:
        """Answer a stopped run and return the resumed run's response (streaming when the engine streams).

        ``interrupt``: the stop to answer (``response.metadata["interrupt"]``); default :attr:`last_interrupt`.
        Pass it explicitly when one engine serves several users. ``approve``: Proceed or Reject; ``feedback``
        reaches a Human Input node that asks for it.
        """
        stop = self._pending(interrupt)
        if not self.streaming:
            return self._response(self.llm.resume(stop, approve=approve, feedback=feedback))
        return self._streaming(self.llm.stream_resume(stop, approve=approve, feedback=feedback))

    async def aresume(
        self, approve: bool, feedback: str | None = None, *, interrupt: Interrupt | None = None
    ) -> Response | AsyncStreamingResponse:
        """:meth:`resume`, natively async."""
        stop = self._pending(interrupt)
        if not self.streaming:
            return self._response(await self.llm.aresume(stop, approve=approve, feedback=feedback))
        return self._astreaming(await self.llm.astream_resume(stop, approve=approve, feedback=feedback))

    def _pending(self, interrupt: Interrupt | None) -> Interrupt:
        stop = interrupt if interrupt is not None else self._last_interrupt
        if stop is None:
            raise ValueError("nothing to resume: no interrupt given and the last response did not stop for a human")
        return stop

    # -- responses --------------------------------------------------------------------------------------

    def _seen(self, metadata: dict[str, Any]) -> None:
        self._last_interrupt = metadata.get("interrupt")

    def _response(self, chat: ChatResponse) -> Response:
        extra = chat.additional_kwargs
        metadata = _metadata(extra)
        self._seen(metadata)
        return Response(chat.message.content or "", source_nodes(extra.get("source_documents") or []), metadata)

    def _streaming(self, responses: Generator[ChatResponse, None, None]) -> StreamingResponse:
        nodes: list[NodeWithScore] = []
        metadata: dict[str, Any] = {}
        fill = _filler(nodes, metadata, self._seen)
        return StreamingResponse(response_gen=_deltas(responses, fill), source_nodes=nodes, metadata=metadata)

    def _astreaming(self, responses: AsyncGenerator[ChatResponse, None]) -> AsyncStreamingResponse:
        nodes: list[NodeWithScore] = []
        metadata: dict[str, Any] = {}
        fill = _filler(nodes, metadata, self._seen)
        return AsyncStreamingResponse(response_gen=_adeltas(responses, fill), source_nodes=nodes, metadata=metadata)


def _bundle(query: QueryType) -> QueryBundle:
    return QueryBundle(query) if isinstance(query, str) else query


def _metadata(extra: dict[str, Any]) -> dict[str, Any]:
    return {key: extra.get(key) for key in _METADATA_KEYS}


def _filler(
    nodes: list[NodeWithScore], metadata: dict[str, Any], seen: Callable[[dict[str, Any]], None]
) -> Callable[[ChatResponse], None]:
    """Fill a streaming response's nodes and metadata from the final chat response."""

    def fill(chat: ChatResponse) -> None:
        extra = chat.additional_kwargs
        if "finish_reason" in extra:  # the final response
            nodes.extend(source_nodes(extra.get("source_documents") or []))
            metadata.update(_metadata(extra))
            seen(metadata)

    return fill


def _deltas(
    responses: Generator[ChatResponse, None, None], fill: Callable[[ChatResponse], None]
) -> Generator[str, None, None]:
    for chat in responses:
        if chat.delta:
            yield chat.delta
        fill(chat)


async def _adeltas(
    responses: AsyncGenerator[ChatResponse, None], fill: Callable[[ChatResponse], None]
) -> AsyncGenerator[str, None]:
    async for chat in responses:
        if chat.delta:
            yield chat.delta
        fill(chat)
