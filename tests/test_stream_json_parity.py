"""One flow, one answer: a streamed run and a JSON run of the same real flow fold into the same ``Prediction``.

Every ``NAME_stream`` / ``NAME_nonstream`` pair recorded from a real Flowise (3.1.4 and 2.2.8) is replayed through
the client; text, tools, sources, status, interrupt, usage and the error class must agree (issue 12: "stream and
predict alike"; issue 14: "one flow, two classes").
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from flowise_integrations import FlowiseClient, FlowiseError, Prediction

FIXTURES = Path(__file__).parent / "fixtures"
DIRS = {"3.1.4": FIXTURES / "real_captures", "2.2.8": FIXTURES / "real_captures_2.2.8"}
PAIRS = sorted(
    (version, p.name.removesuffix("_stream.txt"))
    for version, folder in DIRS.items()
    for p in folder.glob("*_stream.txt")
    if (folder / p.name.replace("_stream.txt", "_nonstream.txt")).exists()
)


def run(version: str, name: str) -> Prediction | FlowiseError:
    head, _, body = (DIRS[version] / f"{name}.txt").read_bytes().partition(b"\r\n\r\n")
    if not head:  # Flowise never answered (an unknown flow, streamed): nothing to replay
        pytest.skip("no response recorded (Flowise hangs on an unknown streamed flow; covered by the watch tests)")
    status = int(head.split(b" ", 2)[1])
    headers = [tuple(line.split(b": ", 1)) for line in head.split(b"\r\n")[1:]]
    keep = [(k, v) for k, v in headers if k.lower() not in (b"transfer-encoding", b"content-length")]
    transport = httpx.MockTransport(lambda request: httpx.Response(status, headers=keep, content=body))
    client = FlowiseClient("http://flowise.test", http_client=httpx.Client(transport=transport), diagnose_after=None)
    try:
        return client.stream("flow", "hi").until_done()
    except FlowiseError as exc:
        return exc


@pytest.mark.parametrize(("version", "name"), PAIRS)
def test_streamed_and_json_runs_agree(version: str, name: str) -> None:
    streamed, plain = run(version, f"{name}_stream"), run(version, f"{name}_nonstream")
    if isinstance(streamed, FlowiseError) or isinstance(plain, FlowiseError):
        assert type(streamed) is type(plain), (streamed, plain)
        return
    assert streamed.text == plain.text
    assert [t.tool for t in streamed.used_tools] == [t.tool for t in plain.used_tools]
    assert [d.page_content for d in streamed.source_documents] == [d.page_content for d in plain.source_documents]
    assert streamed.agent_flow_status == plain.agent_flow_status
    assert streamed.finish_reason == plain.finish_reason
    assert (streamed.interrupt is None) == (plain.interrupt is None)
    assert streamed.usage == plain.usage
    if streamed.usage is not None:
        assert streamed.usage.total_tokens == streamed.usage.input_tokens + streamed.usage.output_tokens
