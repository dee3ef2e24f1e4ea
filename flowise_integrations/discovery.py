"""What a Flowise server offers: typed flows (``FlowInfo``) from its chatflow rows, and helpers both wings share.

Pure functions over payloads the client fetched; no I/O. Where each field comes from (Flowise 2.2.8 to 3.1.x):

- ``GET /api/v1/chatflows`` (a list, or ``{"data", "total"}`` when paged) and ``GET /api/v1/chatflows/{id}``
  (both need an API key with ``chatflows:view`` / ``agentflows:view``) give the ChatFlow row: ``id``, ``name``,
  ``type`` (``null`` on 2.2.8 rows means ``CHATFLOW``), ``deployed``, ``isPublic``, ``apikeyid``, ``category``
  (``;``-separated), ``flowData`` and the ``*Config`` columns, all JSON *strings*;
  ``mcpServerConfig`` (3.1.3+) holds the flow's own MCP tool name and description, and a token (redacted here).
- An agentflow v2's Start node (``startAgentflow`` in ``flowData``) says how it is started: ``startInputType``
  ``chatInput`` / ``formInput`` / ``webhookTrigger`` / ``scheduleInput``; a form's fields are its
  ``formInputTypes`` (``{type: string|number|boolean|options, label, name, addOptions: [{option}]}``).
- ``GET /api/v1/chatflows-streaming/{id}`` -> ``{"isStreaming"}`` and ``GET /api/v1/chatflows-uploads/{id}``
  (public) fill ``streaming`` and ``uploads``.

Nothing here raises on an odd payload: unknown or missing parts become ``None`` / empty, unknown strings are kept.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "FlowInfo",
    "FlowType",
    "FlowUploads",
    "FormField",
    "InputType",
    "form_json_schema",
    "parse_flow",
    "parse_flow_list",
    "parse_streaming",
    "parse_uploads",
    "prediction_refusal",
    "tool_name",
    "validate_form",
]

FlowType = Literal["CHATFLOW", "AGENTFLOW", "MULTIAGENT", "ASSISTANT"]
InputType = Literal["chat", "form", "webhook", "schedule"]

_INPUT_TYPES: dict[str, str] = {
    "chatInput": "chat",
    "formInput": "form",
    "webhookTrigger": "webhook",
    "scheduleInput": "schedule",
}
_REDACTED = "***"


class _WireModel(BaseModel):
    model_config = ConfigDict(defer_build=True, populate_by_name=True, extra="allow")


class FormField(_WireModel):
    """One field of an agentflow's Start form (Flowise's ``formInputTypes`` item).

    Flowise's own MCP endpoint treats every field as required; ``options`` fields with no options cannot be
    filled in and are optional here.
    """

    name: str
    label: str = ""
    type: str = "string"  # string | number | boolean | options (unknown kinds kept as sent)
    required: bool = True
    options: list[str] = Field(default_factory=list)
    default: Any = None
    description: str | None = None


class FlowUploads(_WireModel):
    """What a flow accepts besides text (``GET /chatflows-uploads/{id}``, plus the row's full-file setting)."""

    speech_to_text: bool = Field(default=False, alias="isSpeechToTextEnabled")
    images: bool = Field(default=False, alias="isImageUploadAllowed")
    rag_files: bool = Field(default=False, alias="isRAGFileUploadAllowed")
    image_types: list[str] = Field(default_factory=list)
    image_max_mb: float | None = None
    file_types: list[str] = Field(default_factory=list)
    file_max_mb: float | None = None
    full_files: bool | None = None  # chatbotConfig.fullFileUpload.status (files inlined as text)


class FlowInfo(BaseModel):
    """One flow of a Flowise server, as far as the server said (``None`` = not told)."""

    model_config = ConfigDict(defer_build=True, extra="ignore")

    id: str
    name: str = ""
    type: FlowType | str = "CHATFLOW"
    description: str | None = None
    category: str | None = None
    categories: list[str] = Field(default_factory=list)
    deployed: bool | None = None
    is_public: bool | None = None
    api_key_protected: bool | None = None
    streaming: bool | None = None
    uploads: FlowUploads | None = None
    input_type: InputType | str | None = None
    form_title: str | None = None
    form_description: str | None = None
    form_fields: list[FormField] = Field(default_factory=list)
    webhook_method: str | None = None
    mcp_tool_name: str | None = None
    created_date: str | None = None
    updated_date: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def is_agentflow(self) -> bool:
        """An agentflow v2 (the only kind with a Start node, forms, human input and usage figures)."""
        return self.type == "AGENTFLOW"

    @property
    def tool_description(self) -> str:
        """What an agent tool running this flow does: the flow's MCP description, its form's, or Flowise's default."""
        return self.description or self.form_description or f'Execute the "{self.name}" flow'

    def suggested_tool_name(self, taken: Iterable[str] = ()) -> str:
        """A unique tool name: the flow's own MCP tool name when set (3.1.3+), else one made from its name."""
        return tool_name(self.mcp_tool_name or self.name, taken)

    def with_details(self, *, streaming: Any = None, uploads: Any = None) -> FlowInfo:
        """A copy with the answers of ``/chatflows-streaming/{id}`` and ``/chatflows-uploads/{id}`` filled in."""
        update: dict[str, Any] = {}
        if streaming is not None:
            update["streaming"] = parse_streaming(streaming)
        if uploads is not None:
            parsed = parse_uploads(uploads)
            if parsed is not None and self.uploads is not None and parsed.full_files is None:
                parsed.full_files = self.uploads.full_files
            update["uploads"] = parsed
        return self.model_copy(update=update)


# ----------------------------------------------------------------------------------------------- parsing


def _json_value(value: Any) -> Any:
    """A JSON column: decoded when it is a string holding JSON, else as given (``None`` when undecodable)."""
    if isinstance(value, (str, bytes, bytearray)):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _bool_or_none(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):  # sqlite/mysql booleans
        return bool(value)
    return None


def _start_inputs(flow_data: Any) -> dict[str, Any] | None:
    """The Start node's ``inputs`` of an agentflow v2 ``flowData`` (or ``None``)."""
    data = _json_value(flow_data)
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, list):
        return None
    for node in nodes:
        node_data = node.get("data") if isinstance(node, dict) else None
        if isinstance(node_data, dict) and node_data.get("name") == "startAgentflow":
            inputs = node_data.get("inputs")
            return inputs if isinstance(inputs, dict) else {}
    return None


def _options(value: Any) -> list[str]:
    items = _json_value(value)
    out: list[str] = []
    for item in items if isinstance(items, list) else ():
        option = item.get("option") if isinstance(item, dict) else item
        if isinstance(option, str) and option and option not in out:
            out.append(option)
    return out


def _form_fields(value: Any) -> list[FormField]:
    items = _json_value(value)
    fields: list[FormField] = []
    seen: set[str] = set()
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or name in seen:
            continue
        seen.add(name)
        kind = item.get("type")
        kind = kind if isinstance(kind, str) and kind else "string"
        options = _options(item.get("addOptions")) if kind == "options" else []
        label = item.get("label")
        description = item.get("description")
        fields.append(
            FormField(
                name=name,
                label=label if isinstance(label, str) else "",
                type=kind,
                required=not (kind == "options" and not options),
                options=options,
                default=item.get("default"),
                description=description if isinstance(description, str) and description else None,
            )
        )
    return fields


def _redacted(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with the MCP endpoint token (a credential) masked."""
    raw = dict(row)
    mcp = _json_value(raw.get("mcpServerConfig"))
    if isinstance(mcp, dict) and mcp.get("token"):
        mcp = {**mcp, "token": _REDACTED}
        raw["mcpServerConfig"] = json.dumps(mcp) if isinstance(raw["mcpServerConfig"], str) else mcp
    for secret in ("webhookSecret",):  # never selected by Flowise; masked if a proxy ever adds it
        if raw.get(secret):
            raw[secret] = _REDACTED
    return raw


def parse_flow(row: Any, *, streaming: Any = None, uploads: Any = None) -> FlowInfo | None:
    """A ``FlowInfo`` from one chatflow row (``None`` if the row has no id).

    ``streaming`` / ``uploads`` are the optional answers of ``/chatflows-streaming/{id}`` and
    ``/chatflows-uploads/{id}`` (raw JSON or already parsed).
    """
    if not isinstance(row, Mapping):
        return None
    flow_id = row.get("id")
    if not isinstance(flow_id, str) or not flow_id:
        return None
    kind = row.get("type")
    kind = kind if isinstance(kind, str) and kind else "CHATFLOW"
    category = _str_or_none(row.get("category"))
    mcp = _json_value(row.get("mcpServerConfig"))
    mcp = mcp if isinstance(mcp, dict) else {}
    chatbot = _json_value(row.get("chatbotConfig"))
    full_file = chatbot.get("fullFileUpload") if isinstance(chatbot, dict) else None
    full_files = _bool_or_none(full_file.get("status")) if isinstance(full_file, dict) else None

    start = _start_inputs(row.get("flowData")) if kind == "AGENTFLOW" else None
    input_type: str | None = None
    form_fields: list[FormField] = []
    form_title = form_description = webhook_method = None
    if kind != "AGENTFLOW":
        input_type = "chat"
    elif start is not None:
        declared = start.get("startInputType")
        if isinstance(declared, str) and declared:
            input_type = _INPUT_TYPES.get(declared, declared)
        if input_type == "form":
            form_fields = _form_fields(start.get("formInputTypes"))
            form_title = _str_or_none(start.get("formTitle"))
            form_description = _str_or_none(start.get("formDescription"))
        elif input_type == "webhook":
            method = start.get("webhookMethod")
            webhook_method = method.upper() if isinstance(method, str) and method else "POST"

    apikeyid = row.get("apikeyid")
    info = FlowInfo(
        id=flow_id,
        name=row.get("name") if isinstance(row.get("name"), str) else "",
        type=kind,
        description=_str_or_none(mcp.get("description")),
        category=category,
        categories=[c.strip() for c in category.split(";") if c.strip()] if category else [],
        deployed=_bool_or_none(row.get("deployed")),
        is_public=_bool_or_none(row.get("isPublic")),
        api_key_protected=bool(apikeyid) if "apikeyid" in row else None,
        uploads=FlowUploads(full_files=full_files) if full_files is not None else None,
        input_type=input_type,
        form_title=form_title,
        form_description=form_description,
        form_fields=form_fields,
        webhook_method=webhook_method,
        mcp_tool_name=_str_or_none(mcp.get("toolName")),
        created_date=_str_or_none(row.get("createdDate")),
        updated_date=_str_or_none(row.get("updatedDate")),
        raw=_redacted(row),
    )
    if streaming is not None or uploads is not None:
        info = info.with_details(streaming=streaming, uploads=uploads)
    return info


def parse_flow_list(payload: Any) -> list[FlowInfo]:
    """Every flow of a ``GET /chatflows`` answer (a list, or ``{"data": [...], "total"}`` when paged)."""
    rows = payload.get("data") if isinstance(payload, Mapping) else payload
    if not isinstance(rows, list):
        return []
    return [info for info in (parse_flow(row) for row in rows) if info is not None]


def parse_streaming(payload: Any) -> bool | None:
    """``{"isStreaming": bool}`` -> the bool (``None`` if the answer says nothing)."""
    if isinstance(payload, bool):
        return payload
    return _bool_or_none(payload.get("isStreaming")) if isinstance(payload, Mapping) else None


def _sizes_and_types(value: Any) -> tuple[list[str], float | None]:
    types: list[str] = []
    biggest: float | None = None
    for item in value if isinstance(value, list) else ():
        if not isinstance(item, Mapping):
            continue
        mimes = item.get("fileTypes")
        for mime in mimes if isinstance(mimes, list) else ():
            if isinstance(mime, str) and mime and mime not in types:
                types.append(mime)
        size = item.get("maxUploadSize")
        if isinstance(size, (int, float)) and not isinstance(size, bool) and math.isfinite(size):
            biggest = float(size) if biggest is None else max(biggest, float(size))
    return types, biggest


def parse_uploads(payload: Any) -> FlowUploads | None:
    """The answer of ``GET /chatflows-uploads/{id}`` as ``FlowUploads`` (``None`` if not an object)."""
    if isinstance(payload, FlowUploads):
        return payload
    if not isinstance(payload, Mapping):
        return None
    image_types, image_max = _sizes_and_types(payload.get("imgUploadSizeAndTypes"))
    file_types, file_max = _sizes_and_types(payload.get("fileUploadSizeAndTypes"))
    return FlowUploads(
        speech_to_text=_bool_or_none(payload.get("isSpeechToTextEnabled")) or False,
        images=_bool_or_none(payload.get("isImageUploadAllowed")) or False,
        rag_files=_bool_or_none(payload.get("isRAGFileUploadAllowed")) or False,
        image_types=image_types,
        image_max_mb=image_max,
        file_types=file_types,
        file_max_mb=file_max,
    )


# ---------------------------------------------------------------------------------------------- checks


def prediction_refusal(info: FlowInfo) -> str | None:
    """Why ``POST /prediction/{id}`` cannot run this flow, or ``None`` if it can.

    Flowise 3.1.3+ answers 400 for an agentflow whose Start node is a Webhook Trigger or a Schedule
    (``executeAgentFlow`` in ``packages/server/src/utils/buildAgentflow.ts``); this says so before any request.
    """
    if info.input_type == "webhook":
        method = info.webhook_method or "POST"
        return (
            f"Flow {info.name!r} ({info.id}) starts with a Webhook Trigger: Flowise refuses predictions to it. "
            f"Call {method} /api/v1/webhook/{info.id} instead of the prediction API."
        )
    if info.input_type == "schedule":
        return (
            f"Flow {info.name!r} ({info.id}) starts on a Schedule: Flowise's scheduler fires it and refuses "
            "predictions to it. Change its Start node's input type to Chat or Form to call it."
        )
    return None


# ------------------------------------------------------------------------------------------ tool names

_FALLBACK_NAME = "chatflow_tool"


def tool_name(name: str, taken: Iterable[str] = ()) -> str:
    """A valid tool name (``^[a-zA-Z0-9_-]{1,64}$``) from a flow's display name, unique among ``taken``.

    Flowise's own rule for its per-flow MCP tool (lower case, other characters to ``_``, runs collapsed,
    64 characters, ``chatflow_tool`` when nothing is left), after folding accents (``Café`` -> ``cafe``);
    a clash (case-insensitive) gets ``_2``, ``_3``, ... within the 64 characters.
    """
    folded = unicodedata.normalize("NFKD", name if isinstance(name, str) else "")
    ascii_name = folded.encode("ascii", "ignore").decode("ascii").lower()
    base = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_-]", "_", ascii_name)).strip("_")[:64].strip("_")
    base = base or _FALLBACK_NAME
    used = {t.casefold() for t in taken if isinstance(t, str)}
    candidate, n = base, 1
    while candidate.casefold() in used:
        n += 1
        suffix = f"_{n}"
        candidate = base[: 64 - len(suffix)].rstrip("_") + suffix
    return candidate


# ------------------------------------------------------------------------------------------------ forms

_JSON_TYPES = {"string": "string", "number": "number", "boolean": "boolean", "options": "string"}


def form_json_schema(fields: Iterable[FormField]) -> dict[str, Any]:
    """The JSON schema of a Start form, for an agent tool's arguments (the shape Flowise's MCP endpoint uses)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in fields:
        prop: dict[str, Any] = {}
        json_type = _JSON_TYPES.get(field.type)
        if json_type is not None:
            prop["type"] = json_type
        if field.type == "options" and field.options:
            prop["enum"] = list(field.options)
        if field.label:
            prop["title"] = field.label
        description = field.description or field.label
        if description:
            prop["description"] = description
        if field.default is not None:
            prop["default"] = field.default
        properties[field.name] = prop
        if field.required:
            required.append(field.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}


def _bad(field: FormField, message: str) -> ValueError:
    label = f" ({field.label})" if field.label and field.label != field.name else ""
    return ValueError(f"form field {field.name!r}{label}: {message}")


def _coerce(field: FormField, value: Any) -> Any:
    kind = field.type
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _bad(field, f"expected text, got {type(value).__name__}")
    if kind == "number":
        if isinstance(value, bool):
            raise _bad(field, "expected a number, got a boolean")
        if isinstance(value, str):
            text = value.strip()
            try:
                value = int(text)
            except ValueError:
                try:
                    value = float(text)
                except ValueError:
                    raise _bad(field, f"expected a number, got {text!r}") from None
        if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
            return value
        raise _bad(field, f"expected a finite number, got {value!r}")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _bad(field, f"expected true or false, got {value!r}")
    if kind == "options":
        if not field.options:  # nothing to choose from: any text
            return _coerce(field.model_copy(update={"type": "string"}), value)
        if isinstance(value, str):
            if value in field.options:
                return value
            matches = [o for o in field.options if o.casefold() == value.strip().casefold()]
            if len(matches) == 1:
                return matches[0]
        raise _bad(field, f"expected one of {field.options}, got {value!r}")
    return value  # a kind this package does not know: sent as given


def validate_form(fields: Iterable[FormField], form: Mapping[str, Any], *, allow_extra: bool = False) -> dict[str, Any]:
    """``form`` checked and coerced against the Start form's fields, ready to send as ``form``.

    Numbers and booleans given as text are converted, an option is matched case-insensitively, a missing field
    takes its default; raises ``ValueError`` naming the first bad field (or the unknown keys, unless
    ``allow_extra``).
    """
    if not isinstance(form, Mapping):
        raise TypeError(f"form must be a mapping of field name to value, got {type(form).__name__}")
    known = list(fields)
    names = {f.name for f in known}
    unknown = [k for k in form if k not in names]
    if unknown and not allow_extra:
        expected = ", ".join(repr(n) for n in names) or "none"
        raise ValueError(f"unknown form field(s) {', '.join(repr(k) for k in unknown)} (fields: {expected})")
    out: dict[str, Any] = {}
    for field in known:
        value = form.get(field.name)
        if value is None:
            value = field.default
        if value is None or (isinstance(value, str) and not value.strip() and field.type != "string"):
            if field.required:
                raise _bad(field, "is required")
            continue
        out[field.name] = _coerce(field, value)
    for key in unknown:
        out[key] = form[key]
    return out
