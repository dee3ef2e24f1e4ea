"""A stand-alone, byte-faithful Flowise server emulator (3.1.x by default, 2.x and 3.0 on request).

Usage::

    fake = FakeFlowise(api_key="workspace-key")
    flow_id = fake.add_flow(FakeFlow(answer="Hi there", token_delay=0.01))
    http = httpx.Client(transport=fake.transport(), base_url="http://flowise.test")  # in-process
    with fake.serve() as base_url:  # a real HTTP/1.1 server on 127.0.0.1
        ...

Agentflows are scripted with the nodes of :mod:`.nodes` (``FakeFlow(kind="agentflow", nodes=[...])``), multi-agent
flows with :func:`supervisor_step` / :func:`worker_step`. It imports only the standard library and httpx, never the
client it is used to test.
"""

from .fake import FakeFlowise
from .flow import DEFAULT_ANSWER, FakeFlow, split_tokens
from .multiagent import supervisor_step, worker_step
from .nodes import LLM, Agent, Condition, DirectReply, HumanInput, Iteration, Loop
from .records import RecordedRequest
from .wire import UNDEFINED

__all__ = [
    "DEFAULT_ANSWER",
    "LLM",
    "UNDEFINED",
    "Agent",
    "Condition",
    "DirectReply",
    "FakeFlow",
    "FakeFlowise",
    "HumanInput",
    "Iteration",
    "Loop",
    "RecordedRequest",
    "split_tokens",
    "supervisor_step",
    "worker_step",
]
