"""``FlowiseToolkit``: every flow of a Flowise server (or the ones you pick) as agent tools, in one call."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_core.tools import BaseTool, BaseToolkit
from pydantic import Field, PrivateAttr, SecretStr
from typing_extensions import Self

from flowise_integrations.discovery import FlowInfo, prediction_refusal

from ._connection import FlowiseConnection
from .tools import FlowiseTool

__all__ = ["FlowFilter", "FlowiseToolkit", "tool_names"]

FlowFilter = Iterable[str] | Callable[[FlowInfo], bool]
"""Flows to pick: ids, names or tool names; or a predicate over :class:`~flowise_integrations.FlowInfo`."""


def _matcher(selection: FlowFilter) -> Callable[[FlowInfo, str], bool]:
    if callable(selection):
        predicate = selection
        return lambda flow, _name: bool(predicate(flow))
    if isinstance(selection, str):
        raise TypeError("include/exclude take a list of ids or names (or a predicate), not one string")
    wanted = set(selection)
    return lambda flow, name: bool({flow.id, flow.name, name} & wanted)


def tool_names(flows: Sequence[FlowInfo]) -> dict[str, str]:
    """Flow id -> its tool's name, unique; clashes are numbered in creation order, so a name never moves to
    another flow when one is edited (Flowise lists the most recently updated first)."""
    names: dict[str, str] = {}
    for flow in sorted(flows, key=lambda f: (f.created_date or "", f.id)):
        names[flow.id] = flow.suggested_tool_name(names.values())
    return names


def _named(selection: FlowFilter | None) -> set[str]:
    return set() if selection is None or callable(selection) or isinstance(selection, str) else set(selection)


class FlowiseToolkit(BaseToolkit, FlowiseConnection):
    """One :class:`FlowiseTool` per flow of a Flowise server, for an agent to compose.

    Each tool is named from its flow (Flowise's own MCP tool name when set, else a valid name made from the
    flow's name; a clash is numbered in creation order: see :func:`tool_names`), described from the flow's
    description, and takes ``question``, or a form-input agentflow's fields. Flows that start from a webhook or a
    schedule cannot be called through the prediction API: they are left out (naming one in ``include`` raises).
    The tools share one connection pool; a failing flow is an error the agent reads (``handle_tool_error``).

    Example:
        ```python
        from flowise_integrations.langchain import FlowiseToolkit

        toolkit = FlowiseToolkit.from_server(base_url="http://localhost:3000", api_key="...", exclude=["Drafts"])
        agent = create_agent(model, toolkit.get_tools())
        ```

    The key needs Flowise's ``chatflows:view`` (and ``agentflows:view``) permission to list flows.
    """

    flows: list[FlowInfo] = Field(default_factory=list)
    """The flows the tools run (already filtered)."""
    session_id: str | None = None
    """Session bound to every tool (per run: ``configurable.flowise_session_id``); see :class:`FlowiseTool`."""
    allow_model_session: bool = False
    """Let the model choose sessions (off by default)."""
    handle_tool_error: bool | str | Callable[[Exception], str] = True
    """How tools report a failing flow: ``True`` hands the error text to the agent as the tool's answer."""
    override_config: dict[str, Any] | None = None
    """Flowise ``overrideConfig`` sent with every call."""
    emit_custom_events: bool = True
    """Tools dispatch ``flowise_*`` custom events (sources, tools, ids)."""

    _tools: list[BaseTool] | None = PrivateAttr(default=None)

    @classmethod
    def from_server(
        cls,
        *,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        include: FlowFilter | None = None,
        exclude: FlowFilter | None = None,
        session_id: str | None = None,
        **settings: Any,
    ) -> Self:
        """List the server's flows (``GET /api/v1/chatflows``) and make a toolkit of those ``include`` and
        ``exclude`` select (ids, names, tool names, or a predicate). Other settings: the fields of this class."""
        toolkit = cls._unfilled(base_url, api_key, session_id, settings)
        flows = toolkit.client.list_flows(details=False)
        return toolkit._with_flows(flows, include, exclude)

    @classmethod
    async def afrom_server(
        cls,
        *,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        include: FlowFilter | None = None,
        exclude: FlowFilter | None = None,
        session_id: str | None = None,
        **settings: Any,
    ) -> Self:
        """The async twin of :meth:`from_server`."""
        toolkit = cls._unfilled(base_url, api_key, session_id, settings)
        flows = await toolkit.async_client.list_flows(details=False)
        return toolkit._with_flows(flows, include, exclude)

    @classmethod
    def from_flows(
        cls,
        flows: Sequence[FlowInfo],
        *,
        include: FlowFilter | None = None,
        exclude: FlowFilter | None = None,
        **settings: Any,
    ) -> Self:
        """A toolkit over flows you already have (``client.list_flows()`` / ``get_flow(id)``); no request."""
        return cls(**settings)._with_flows(list(flows), include, exclude)

    @classmethod
    def _unfilled(
        cls, base_url: str | None, api_key: str | SecretStr | None, session_id: str | None, settings: dict[str, Any]
    ) -> Self:
        fields: dict[str, Any] = {**settings, "session_id": session_id}
        if base_url is not None:
            fields["base_url"] = base_url
        if api_key is not None:
            fields["api_key"] = api_key
        return cls(**fields)

    def _with_flows(self, flows: list[FlowInfo], include: FlowFilter | None, exclude: FlowFilter | None) -> Self:
        named = _named(include)
        chosen: list[FlowInfo] = []
        names = tool_names(flows)
        for flow in flows:
            name = names[flow.id]
            if include is not None and not _matcher(include)(flow, name):
                continue
            if exclude is not None and _matcher(exclude)(flow, name):
                continue
            refusal = prediction_refusal(flow)
            if refusal is not None:
                if {flow.id, flow.name, name} & named:
                    raise ValueError(f"cannot make a tool of this flow: {refusal}")
                continue
            chosen.append(flow)
        self.flows = chosen
        self._tools = None
        return self

    def get_tools(self) -> list[BaseTool]:
        """One tool per flow (built once; the same objects on every call)."""
        if self._tools is None:
            self._tools = list(self._build_tools())
        return list(self._tools)

    def _build_tools(self) -> Iterable[FlowiseTool]:
        connection = self._connection_fields()
        names = tool_names(self.flows)
        for flow in self.flows:
            tool = FlowiseTool(
                name=names[flow.id],
                description=flow.tool_description,
                chatflow_id=flow.id,
                flow=flow,
                form_fields=flow.form_fields if flow.input_type == "form" else [],
                session_id=self.session_id,
                allow_model_session=self.allow_model_session,
                handle_tool_error=self.handle_tool_error,
                override_config=self.override_config,
                emit_custom_events=self.emit_custom_events,
                **connection,
            )
            tool._share_clients(self)
            yield tool
