"""A stand-alone, byte-faithful Flowise 3.1.x server emulator for tests, benchmarks and demos.

Usage::

    fake = FakeFlowise(api_key="workspace-key")
    flow_id = fake.add_flow(FakeFlow(answer="Hi there", token_delay=0.01))
    http = httpx.Client(transport=fake.transport(), base_url="http://flowise.test")  # in-process
    with fake.serve() as base_url:  # a real HTTP/1.1 server on 127.0.0.1
        ...

It imports only the standard library and httpx, never the client it is used to test.
"""

from .fake import FakeFlowise
from .flow import DEFAULT_ANSWER, FakeFlow, split_tokens
from .records import RecordedRequest
from .wire import UNDEFINED

__all__ = ["DEFAULT_ANSWER", "UNDEFINED", "FakeFlow", "FakeFlowise", "RecordedRequest", "split_tokens"]
