"""One model call as Flowise's agentflow nodes record it: model config, usage, response metadata, token chunks."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "FAKE_MODEL",
    "approx_tokens",
    "estimated_usage",
    "model_config",
    "response_metadata",
    "tool_round_chunks",
    "usage_metadata",
]

FAKE_MODEL: Final = "fake-gpt"
_BASE_PATH: Final = "http://127.0.0.1:4999/v1"
# cl100k_base's pre-tokenizer (ASCII approximation): most English words and punctuation runs are one token each
_PIECE: Final = re.compile(
    r"'(?:s|t|re|ve|m|ll|d)|[^\r\n\w]?[^\W\d_]+|\d{1,3}| ?[^\s\w]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", re.IGNORECASE
)


def approx_tokens(text: str) -> int:
    """A close, dependency-free approximation of tiktoken's cl100k count (pre-tokenizer pieces)."""
    return len(_PIECE.findall(text))


def model_config(prefix: str, credential_id: str, *, streaming: bool = True) -> dict[str, Any]:
    """The node's ``<prefix>ModelConfig`` input (a ChatOpenAI pointed at the fake model)."""
    return {
        "cache": "",
        "modelName": FAKE_MODEL,
        "temperature": 0,
        "streaming": streaming,
        "maxTokens": "",
        "topP": "",
        "frequencyPenalty": "",
        "presencePenalty": "",
        "timeout": "",
        "strictToolCalling": "",
        "stopSequence": "",
        "basepath": _BASE_PATH,
        "proxyUrl": "",
        "baseOptions": "",
        "allowImageUploads": "",
        "imageResolution": "low",
        "reasoningEffort": "",
        f"{prefix}Model": "chatOpenAI",
        "FLOWISE_CREDENTIAL_ID": credential_id,
    }


def usage_metadata(usage: tuple[int, int] | dict[str, Any] | None, default: dict[str, Any]) -> dict[str, Any]:
    """LangChain ``UsageMetadata`` of one call from ``(input, output)``, a dict, or the flow's default."""
    if usage is None:
        return dict(default)
    if isinstance(usage, dict):
        return dict(usage)
    prompt, completion = usage
    return {
        "input_tokens": prompt,
        "output_tokens": completion,
        "total_tokens": prompt + completion,
        "input_token_details": {},
        "output_token_details": {},
    }


def _usage_block(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.get("input_tokens", 0),
        "completion_tokens": usage.get("output_tokens", 0),
        "total_tokens": usage.get("total_tokens", 0),
    }


def response_metadata(
    usage: dict[str, Any], *, streamed: bool, finish_reason: str = "stop", estimated: dict[str, int] | None = None
) -> dict[str, Any]:
    """``response_metadata`` of a streamed call, or of an invoked one (with LangChain's token estimate first)."""
    if streamed:
        return {"prompt": 0, "completion": 0, "model_provider": "openai", "usage": _usage_block(usage),
                "finish_reason": finish_reason, "model_name": FAKE_MODEL}  # fmt: skip
    return {"estimatedTokenUsage": estimated or {"promptTokens": 0, "completionTokens": 0, "totalTokens": 0},
            "prompt": 0, "completion": 0, "finish_reason": finish_reason, "model_name": FAKE_MODEL,
            "model_provider": "openai", "usage": _usage_block(usage)}  # fmt: skip


def estimated_usage(messages: list[dict[str, Any]], answer: str, count: Callable[[str], int]) -> dict[str, int]:
    """``estimatedTokenUsage`` as @langchain/openai computes it (3 per message + role + content + name, + 3)."""
    prompt = 3
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content, separators=(",", ":"))
        prompt += 3 + count(text) + count(_role(message))
        if "name" in message:
            prompt += 1 + count(str(message["name"]))
    completion = count(answer)
    return {"promptTokens": prompt, "completionTokens": completion, "totalTokens": prompt + completion}


def _role(message: dict[str, Any]) -> str:
    role = str(message.get("role", "user"))
    return {"developer": "system"}.get(role, role)


def tool_round_chunks(calls: list[dict[str, Any]]) -> int:
    """Empty ``token`` events of a streamed tool-calling response: role, name, 6-char argument pieces, finish."""
    return 3 + sum(1 + math.ceil(len(json.dumps(c["args"])) / 6) for c in calls) if calls else 0
