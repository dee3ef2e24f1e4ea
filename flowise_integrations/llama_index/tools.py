"""``FlowiseToolSpec``: the flows of a Flowise server as LlamaIndex agent tools, one per flow.

Each tool is named from its flow (Flowise's own MCP tool name, else the flow's name; valid and unique) and
described from it. The model sees only ``question`` (a chat flow) or the Start form's fields (a form-input
agentflow: Flowise refuses a question and a form together); the session and the chat are bound by the developer
on the spec, never chosen by the model. A call returns a ``ToolOutput`` whose ``content`` is the answer and whose
``raw_output`` is the :class:`~flowise_integrations.Prediction` (sources, the tools the flow ran, billable usage,
an ``interrupt`` when it stopped for a human). A failing flow or bad arguments give an error output the agent
reads (``is_error=True``, the exception kept), never an exception out of the tool. Sync and async are native; a
cancelled call aborts the run on the server.
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import httpx
from llama_index.core.tools import FunctionTool, ToolMetadata, ToolOutput
from llama_index.core.tools.tool_spec.base import SPEC_FUNCTION_TYPE, BaseToolSpec
from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model

from flowise_integrations.client import AsyncFlowiseClient, FlowiseClient
from flowise_integrations.discovery import FlowInfo, FormField, prediction_refusal, validate_form
from flowise_integrations.errors import FlowiseError
from flowise_integrations.exchange import DEFAULT_TIMEOUT, resolve_api_key, resolve_base_url, resolve_credentials
from flowise_integrations.models import Prediction

from ._clients import Clients

__all__ = ["FlowiseFlowTool", "FlowiseToolSpec"]

_MAX_DESCRIPTION = 1024  # OpenAI's limit, which LlamaIndex's to_openai_tool enforces
_FORM_TYPES: dict[str, Any] = {"string": str, "number": float, "boolean": bool}


class _Arguments(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


def _field_type(field: FormField) -> Any:
    if field.type == "options" and field.options:
        return Literal[tuple(field.options)]
    return _FORM_TYPES.get(field.type, str)


def _fn_schema(info: FlowInfo, name: str) -> type[BaseModel]:
    """The arguments the model sees: ``question``, or the form's fields (their names kept as aliases)."""
    if not (info.input_type == "form" and info.form_fields):
        question = (str, Field(description="The question or message to send to the flow"))
        return create_model(name, __base__=_Arguments, question=question)
    fields: dict[str, Any] = {}
    for index, field in enumerate(info.form_fields):
        safe = field.name if field.name.isidentifier() and not keyword.iskeyword(field.name) else f"field_{index}"
        if safe.startswith("_") or safe in fields or safe in BaseModel.__dict__:
            safe = f"field_{index}"
        default = ... if field.required else field.default
        description = field.description or field.label or None
        fields[safe] = (_field_type(field), Field(default, alias=field.name, title=field.label or None,
                                                  description=description))  # fmt: skip
    return create_model(name, __base__=_Arguments, **fields)


def _description(info: FlowInfo) -> str:
    text = info.tool_description
    return text if len(text) <= _MAX_DESCRIPTION else text[: _MAX_DESCRIPTION - 1] + "…"


def _answer(prediction: Prediction) -> str:
    """What the agent reads: the answer; a structured output as JSON; a bare stop's prompt."""
    if prediction.text:
        return prediction.text
    if prediction.json_output is not None:
        return json.dumps(prediction.json_output, ensure_ascii=False, default=str)
    if prediction.interrupt is not None:
        return prediction.interrupt.prompt or "The flow stopped and waits for a human decision."
    return ""


class FlowiseFlowTool(FunctionTool):
    """One Flowise flow as a LlamaIndex tool (made by :meth:`FlowiseToolSpec.to_tool_list`).

    ``fn``/``async_fn`` run the flow and return its :class:`~flowise_integrations.Prediction` (raising the
    ``FlowiseError`` tree); ``call``/``acall`` (what agents use) never raise for a failed flow or bad arguments:
    they return an error ``ToolOutput``.
    """

    def __init__(self, spec: FlowiseToolSpec, info: FlowInfo, metadata: ToolMetadata) -> None:
        self._spec = spec
        self.flow = info
        super().__init__(fn=self._run, async_fn=self._arun, metadata=metadata)

    # -- running the flow -------------------------------------------------------------------------------

    def _request(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """``(question, options)`` from the model's arguments; ``ValueError`` naming what is wrong."""
        info = self.flow
        if info.input_type == "form" and info.form_fields:
            if args:
                raise ValueError(f"takes the form's fields by name: {[f.name for f in info.form_fields]}")
            options: dict[str, Any] = {"form": validate_form(info.form_fields, kwargs)}  # names the first bad field
            question = None
        else:
            extra = sorted(set(kwargs) - {"question", "input"})
            if extra or len(args) > 1 or (args and kwargs):
                got = ", ".join([*(repr(a) for a in extra), *(["positional"] if args else [])])
                raise ValueError(f"takes only 'question' (got {got})")
            value = args[0] if args else kwargs.get("question", kwargs.get("input"))
            if not isinstance(value, str) or not value.strip():
                raise ValueError("'question' must be a non-empty string")
            question, options = value, {}
        spec = self._spec
        options.update(
            chat_id=spec.chat_id,
            session_id=spec.session_id,
            override_config=spec.override_config,
            deadline=spec.deadline,
        )
        return question, options

    def _run(self, *args: Any, **kwargs: Any) -> Prediction:
        """Run the flow (sync) and return its prediction; raises ``ValueError`` or the ``FlowiseError`` tree."""
        question, options = self._request(args, kwargs)
        spec = self._spec  # Ctrl-C: the client aborts the run in the background
        return spec.client.predict(self.flow.id, question, abort_on_cancel=spec.abort_on_cancel, **options)

    async def _arun(self, *args: Any, **kwargs: Any) -> Prediction:
        """Run the flow (natively async); a cancelled task aborts the run on the server."""
        question, options = self._request(args, kwargs)
        spec = self._spec
        return await spec.async_client.predict(self.flow.id, question, abort_on_cancel=spec.abort_on_cancel, **options)

    # -- what agents call -------------------------------------------------------------------------------

    def call(self, *args: Any, **kwargs: Any) -> ToolOutput:
        """Run the flow; a failure is an error output (``is_error``), not an exception."""
        try:
            return self._output(args, kwargs, self._run(*args, **kwargs))
        except (FlowiseError, ValueError, TypeError) as exc:
            return self._failed(args, kwargs, exc)

    async def acall(self, *args: Any, **kwargs: Any) -> ToolOutput:
        """:meth:`call`, natively async."""
        try:
            return self._output(args, kwargs, await self._arun(*args, **kwargs))
        except (FlowiseError, ValueError, TypeError) as exc:
            return self._failed(args, kwargs, exc)

    def _output(self, args: tuple[Any, ...], kwargs: dict[str, Any], prediction: Prediction) -> ToolOutput:
        return ToolOutput(
            content=_answer(prediction),
            tool_name=self.metadata.get_name(),
            raw_input={"args": args, "kwargs": kwargs},
            raw_output=prediction,
        )

    def _failed(self, args: tuple[Any, ...], kwargs: dict[str, Any], exc: Exception) -> ToolOutput:
        if isinstance(exc, FlowiseError):
            message = f"Error: the flow {self.flow.name!r} failed: {exc}"
        else:
            message = f"Error: invalid arguments for {self.metadata.get_name()}: {exc}"
        return ToolOutput(
            content=message,
            tool_name=self.metadata.get_name(),
            raw_input={"args": args, "kwargs": kwargs},
            raw_output=getattr(exc, "partial", None),
            is_error=True,
            exception=exc,
        )


class FlowiseToolSpec(BaseToolSpec):
    """The flows of a Flowise server as LlamaIndex tools: ``FlowiseToolSpec.from_server(...).to_tool_list()``.

    Args:
        flows: the flows to offer (``client.list_flows()``); webhook- and schedule-started agentflows, which the
            prediction API refuses, are left out (see :attr:`skipped`).
        base_url, api_key: the server and its key (defaults ``FLOWISE_BASE_URL``, ``FLOWISE_API_KEY``).
        include, exclude: flow ids, names or tool names to keep / drop.
        session_id: Flowise memory session of every call (bound here, never by the model): one per user.
        chat_id: the Flowise chat of every call; unset: a new chat per call (concurrent calls never share one).
        override_config: node overrides sent with every call.
        timeout, deadline, max_retries, headers: as on ``FlowiseClient`` (``deadline``: seconds for a whole call).
        abort_on_cancel: abort the run on the server when a call is cancelled (Ctrl-C, a cancelled task).
        http_client, async_http_client: your own httpx clients (you close them).

    Example:
        >>> spec = FlowiseToolSpec.from_server("http://localhost:3000", api_key="...")  # doctest: +SKIP
        >>> agent = FunctionAgent(tools=spec.with_session("user-42").to_tool_list(), llm=...)  # doctest: +SKIP
    """

    def __init__(
        self,
        flows: Iterable[FlowInfo],
        *,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        session_id: str | None = None,
        chat_id: str | None = None,
        override_config: dict[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        max_retries: int = 2,
        headers: Mapping[str, str] | None = None,
        abort_on_cancel: bool = True,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url)  # without any user:password@ (kept secret for the clients)
        self.api_key = resolve_api_key(api_key)
        self._url = SecretStr(base_url) if base_url and resolve_credentials(base_url) else None
        self.session_id = session_id
        self.chat_id = chat_id
        self.override_config = override_config
        self.deadline = deadline
        self.abort_on_cancel = abort_on_cancel
        self._client_options: dict[str, Any] = {"timeout": timeout, "max_retries": max_retries, "headers": headers}
        self._clients = Clients(http_client, async_http_client)
        self._metadata: dict[str, ToolMetadata] = {}  # per flow id, shared by with_session copies
        self.flows, self.skipped = _select(flows, include, exclude)
        self._names = _tool_names(self.flows)
        self.spec_functions = list(self._names.values())

    # -- building ---------------------------------------------------------------------------------------

    @classmethod
    def from_server(
        cls,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        *,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        session_id: str | None = None,
        **options: Any,
    ) -> FlowiseToolSpec:
        """Discover the server's flows (``GET /api/v1/chatflows``: the key needs ``chatflows:view``) and offer
        them. ``options``: the other constructor arguments."""
        spec = cls((), base_url=base_url, api_key=api_key, session_id=session_id, **options)
        flows = spec.client.list_flows(details=False)
        return spec._with_flows(flows, include, exclude)

    @classmethod
    async def afrom_server(
        cls,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        *,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        session_id: str | None = None,
        **options: Any,
    ) -> FlowiseToolSpec:
        """:meth:`from_server`, natively async."""
        spec = cls((), base_url=base_url, api_key=api_key, session_id=session_id, **options)
        flows = await spec.async_client.list_flows(details=False)
        return spec._with_flows(flows, include, exclude)

    def _with_flows(
        self, flows: Iterable[FlowInfo], include: Iterable[str] | None, exclude: Iterable[str] | None
    ) -> FlowiseToolSpec:
        self.flows, self.skipped = _select(flows, include, exclude)
        self._names = _tool_names(self.flows)
        self.spec_functions = list(self._names.values())
        self._metadata = {}
        return self

    def with_session(self, session_id: str | None, *, chat_id: str | None = None) -> FlowiseToolSpec:
        """A copy bound to another memory session (and chat): one per user, sharing flows and connections."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.session_id = session_id
        clone.chat_id = chat_id
        return clone

    # -- clients ----------------------------------------------------------------------------------------

    @property
    def client(self) -> FlowiseClient:
        """The sync client (built on first use, shared by copies from :meth:`with_session`)."""
        return self._clients.get_sync(
            lambda http: FlowiseClient(self._server(), self.api_key, http_client=http, **self._client_options)
        )

    @property
    def async_client(self) -> AsyncFlowiseClient:
        """The running event loop's async client."""
        return self._clients.get_async(
            lambda http: AsyncFlowiseClient(self._server(), self.api_key, http_client=http, **self._client_options)
        )

    def _server(self) -> str:
        return self._url.get_secret_value() if self._url is not None else self.base_url

    def close(self) -> None:
        """Close the sync client's connections (injected httpx clients stay open)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close this event loop's async client."""
        await self._clients.aclose()

    # -- tools ------------------------------------------------------------------------------------------

    def tool_name(self, flow: FlowInfo | str) -> str:
        """The tool name of a flow (or flow id)."""
        return self._names[flow.id if isinstance(flow, FlowInfo) else flow]

    def to_tool_list(
        self,
        spec_functions: Sequence[SPEC_FUNCTION_TYPE] | None = None,
        func_to_metadata_mapping: dict[str, ToolMetadata] | None = None,
    ) -> list[FunctionTool]:
        """One :class:`FlowiseFlowTool` per flow; ``spec_functions`` keeps only these tool names (or flow ids),
        ``func_to_metadata_mapping`` replaces a tool's metadata by tool name."""
        wanted = None if spec_functions is None else {str(s) for s in spec_functions}
        overrides = func_to_metadata_mapping or {}
        tools: list[FunctionTool] = []
        for info in self.flows:
            name = self._names[info.id]
            if wanted is not None and name not in wanted and info.id not in wanted:
                continue
            metadata = overrides.get(name) or self._metadata_of(info, name)
            tools.append(FlowiseFlowTool(self, info, metadata))
        return tools

    def _metadata_of(self, info: FlowInfo, name: str) -> ToolMetadata:
        """A flow's tool metadata, built once (its argument model is the costly part)."""
        metadata = self._metadata.get(info.id)
        if metadata is None:
            metadata = ToolMetadata(description=_description(info), name=name, fn_schema=_fn_schema(info, name))
            self._metadata[info.id] = metadata
        return metadata


def _matches(info: FlowInfo, names: set[str], tool: str) -> bool:
    return bool({info.id, info.name, tool} & names)


def _select(
    flows: Iterable[FlowInfo], include: Iterable[str] | None, exclude: Iterable[str] | None
) -> tuple[list[FlowInfo], dict[str, str]]:
    """The flows to offer, and why the others were skipped (flow id -> reason)."""
    flows = list(flows)
    names = _tool_names(flows)
    keep = None if include is None else set(include)
    drop = set(exclude or ())
    chosen: list[FlowInfo] = []
    skipped: dict[str, str] = {}
    for info in flows:
        tool = names[info.id]
        if keep is not None and not _matches(info, keep, tool):
            continue
        if _matches(info, drop, tool):
            continue
        refusal = prediction_refusal(info)
        if refusal is not None:
            skipped[info.id] = refusal
            continue
        chosen.append(info)
    return chosen, skipped


def _tool_names(flows: Iterable[FlowInfo]) -> dict[str, str]:
    """Flow id -> a valid tool name, unique among these flows."""
    names: dict[str, str] = {}
    for info in flows:
        names[info.id] = info.suggested_tool_name(names.values())
    return names
