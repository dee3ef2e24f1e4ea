"""Human in the loop (``flowise_integrations.hitl``): the typed ``Interrupt`` of a stopped run and the body that
resumes it. Payload shapes are those a real Flowise 3.1.4 sends (Human Input and tool-approval stops, JSON and
streamed), and the sequential-agents action of ``buildAgentGraph.ts``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flowise_integrations.hitl import (
    Decision,
    Interrupt,
    human_input_body,
    interrupt_from,
    resumed_node,
    run_status,
)
from flowise_integrations.models import HumanInput, PredictionRequest

CAPTURES = Path(__file__).parent / "fixtures" / "real_captures"

# Recorded from a real Flowise 3.1.4 (2026-12-01; harness.start_real_flowise, the e2e fake model answering every
# call with 10 in / 12 out) and trimmed: model configs, times, state, chat history and tool schemas dropped, node
# inputs cut to messages / tools / humanInput. One exchange per line: the request body, the model calls the fake
# model logged, and the JSON reply's fields or the stream's events, last executed-data snapshot and usage events.
# Flows: "Review Draft" (Start -> LLM -> Human Input "Do you approve the draft?", feedback on -> LLM),
# "Careful Calculator" (Start -> Agent with the calculator marked "require human input"), "Two Checks"
# (Start -> LLM -> Human Input, feedback off -> LLM -> Human Input with a model-written description -> LLM).
REAL_314: dict[str, dict[str, Any]] = {
    name: json.loads(line)
    for name, line in (
        (
            "hi_stop_json",
            r"""{"streamed":false,"text":"Hello from the fake LLM! This answer is streamed token by token.\n\nDo you approve the draft?","executionId":"ab52352f-1100-49f4-b6cb-5f06636734b7","action":{"id":"c84c7dc6-9b79-48e0-acf2-3f29b80f88b3","mapping":{"approve":"Proceed","reject":"Reject"},"elements":[{"type":"agentflowv2-approve-button","label":"Proceed"},{"type":"agentflowv2-reject-button","label":"Reject"}],"data":{"nodeId":"humanInputAgentflow_0","nodeLabel":"Review","input":{"messages":[{"role":"user","content":"write a haiku"},{"role":"user","content":"Hello from the fake LLM! This answer is streamed token by token.","name":"writer"}],"humanInputEnableFeedback":true}}},"agentFlowExecutedData":[{"nodeId":"startAgentflow_0","nodeLabel":"Start","data":{"id":"startAgentflow_0","name":"startAgentflow","input":{"question":"write a haiku"},"output":{"question":"write a haiku"}},"status":"FINISHED"},{"nodeId":"llmAgentflow_0","nodeLabel":"Writer","data":{"id":"llmAgentflow_0","name":"llmAgentflow","input":{"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"write a haiku"}]},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}}},"status":"FINISHED"},{"nodeId":"humanInputAgentflow_0","nodeLabel":"Review","data":{"id":"humanInputAgentflow_0","name":"humanInputAgentflow","input":{"messages":[{"role":"user","content":"write a haiku"},{"role":"user","content":"Hello from the fake LLM! This answer is streamed token by token.","name":"writer"}],"humanInputEnableFeedback":true},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.\n\nDo you approve the draft?","humanInputAction":{"id":"c84c7dc6-9b79-48e0-acf2-3f29b80f88b3","mapping":{"approve":"Proceed","reject":"Reject"},"elements":[{"type":"agentflowv2-approve-button","label":"Proceed"},{"type":"agentflowv2-reject-button","label":"Reject"}],"data":{"nodeId":"humanInputAgentflow_0","nodeLabel":"Review","input":{"messages":[{"role":"user","content":"write a haiku"},{"role":"user","content":"Hello from the fake LLM! This answer is streamed token by token.","name":"writer"}],"humanInputEnableFeedback":true}}}}},"status":"STOPPED"}],"request":{"question":"write a haiku","chatId":"55903f19-15fd-4c95-b373-b2ee9a5b0389"},"model_calls":1}""",
        ),
        (
            "hi_proceed_json",
            r"""{"streamed":false,"text":"Hello from the fake LLM! This answer is streamed token by token.","executionId":"ab52352f-1100-49f4-b6cb-5f06636734b7","agentFlowExecutedData":[{"nodeId":"startAgentflow_0","nodeLabel":"Start","data":{"id":"startAgentflow_0","name":"startAgentflow","input":{"question":"write a haiku"},"output":{"question":"write a haiku"}},"status":"FINISHED"},{"nodeId":"llmAgentflow_0","nodeLabel":"Writer","data":{"id":"llmAgentflow_0","name":"llmAgentflow","input":{"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"write a haiku"}]},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}}},"status":"FINISHED"},{"nodeId":"humanInputAgentflow_0","nodeLabel":"Review","data":{"id":"humanInputAgentflow_0","name":"humanInputAgentflow","input":{"type":"proceed","startNodeId":"humanInputAgentflow_0","feedback":"looks good","messages":[{"content":"write a haiku","role":"user"},{"content":"Hello from the fake LLM! This answer is streamed token by token.\n\nDo you approve the draft?","role":"assistant"},{"role":"user","content":"looks good"}]},"output":{"content":"looks good","conditions":[{"type":"proceed","startNodeId":"humanInputAgentflow_0","feedback":"looks good","isFulfilled":true},{"type":"reject","startNodeId":"humanInputAgentflow_0","feedback":"looks good","isFulfilled":false}]}},"status":"FINISHED"},{"nodeId":"llmAgentflow_1","nodeLabel":"Finisher","data":{"id":"llmAgentflow_1","name":"llmAgentflow","input":{"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"write a haiku"},{"role":"assistant","content":"Hello from the fake LLM! This answer is streamed token by token.\n\nDo you approve the draft?"},{"role":"user","content":"looks good"}]},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}}},"status":"FINISHED"}],"request":{"question":"looks good","chatId":"55903f19-15fd-4c95-b373-b2ee9a5b0389","humanInput":{"type":"proceed","startNodeId":"humanInputAgentflow_0","feedback":"looks good"}},"model_calls":1}""",
        ),
        (
            "hi_stop_session_stream",
            r"""{"streamed":true,"events":["agentFlowEvent:INPROGRESS","nextAgentFlow:INPROGRESS","nextAgentFlow:FINISHED","agentFlowExecutedData","nextAgentFlow:INPROGRESS","nextAgentFlow:FINISHED","agentFlowExecutedData","nextAgentFlow:INPROGRESS","token","nextAgentFlow:STOPPED","agentFlowExecutedData","agentFlowEvent:STOPPED","action","agentFlowEvent:STOPPED","metadata","end"],"action":{"id":"6413f9ca-95f3-472e-a878-f149dd3164bd","mapping":{"approve":"Proceed","reject":"Reject"},"elements":[{"type":"agentflowv2-approve-button","label":"Proceed"},{"type":"agentflowv2-reject-button","label":"Reject"}],"data":{"nodeId":"humanInputAgentflow_0","nodeLabel":"Review","input":{"messages":[{"role":"user","content":"write a poem"},{"role":"user","content":"Hello from the fake LLM! This answer is streamed token by token.","name":"writer"}],"humanInputEnableFeedback":true}}},"agentFlowExecutedData":[{"nodeId":"startAgentflow_0","nodeLabel":"Start","data":{"id":"startAgentflow_0","name":"startAgentflow","input":{"question":"write a poem"},"output":{"question":"write a poem"}},"status":"FINISHED"},{"nodeId":"llmAgentflow_0","nodeLabel":"Writer","data":{"id":"llmAgentflow_0","name":"llmAgentflow","input":{"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"write a poem"}]},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}}},"status":"FINISHED"},{"nodeId":"humanInputAgentflow_0","nodeLabel":"Review","data":{"id":"humanInputAgentflow_0","name":"humanInputAgentflow","input":{"messages":[{"role":"user","content":"write a poem"},{"role":"user","content":"Hello from the fake LLM! This answer is streamed token by token.","name":"writer"}],"humanInputEnableFeedback":true},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.\n\nDo you approve the draft?","humanInputAction":{"id":"6413f9ca-95f3-472e-a878-f149dd3164bd","mapping":{"approve":"Proceed","reject":"Reject"},"elements":[{"type":"agentflowv2-approve-button","label":"Proceed"},{"type":"agentflowv2-reject-button","label":"Reject"}],"data":{"nodeId":"humanInputAgentflow_0","nodeLabel":"Review","input":{"messages":[{"role":"user","content":"write a poem"},{"role":"user","content":"Hello from the fake LLM! This answer is streamed token by token.","name":"writer"}],"humanInputEnableFeedback":true}}}}},"status":"STOPPED"}],"usageMetadata":[],"text":"Hello from the fake LLM! This answer is streamed token by token.\n\nDo you approve the draft?","request":{"question":"write a poem","overrideConfig":{"sessionId":"sess-3a8a4ea4"}},"model_calls":1}""",
        ),
        (
            "hi_reject_session_stream",
            r"""{"streamed":true,"events":["agentFlowEvent:INPROGRESS","nextAgentFlow:INPROGRESS","nextAgentFlow:FINISHED","agentFlowExecutedData","nextAgentFlow:INPROGRESS","token","token","token","token","token","token","token","token","token","token","token","token","token","token","token","calledTools","usageMetadata","nextAgentFlow:FINISHED","agentFlowExecutedData","agentFlowEvent:FINISHED","metadata","end"],"action":null,"agentFlowExecutedData":[{"nodeId":"startAgentflow_0","nodeLabel":"Start","data":{"id":"startAgentflow_0","name":"startAgentflow","input":{"question":"write a poem"},"output":{"question":"write a poem"}},"status":"FINISHED"},{"nodeId":"llmAgentflow_0","nodeLabel":"Writer","data":{"id":"llmAgentflow_0","name":"llmAgentflow","input":{"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"write a poem"}]},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}}},"status":"FINISHED"},{"nodeId":"humanInputAgentflow_0","nodeLabel":"Review","data":{"id":"humanInputAgentflow_0","name":"humanInputAgentflow","input":{"type":"reject","startNodeId":"humanInputAgentflow_0","messages":[{"content":"write a poem","role":"user"},{"content":"Hello from the fake LLM! This answer is streamed token by token.\n\nDo you approve the draft?","role":"assistant"},{"role":"user","content":"reject"}]},"output":{"content":"reject","conditions":[{"type":"proceed","startNodeId":"humanInputAgentflow_0","isFulfilled":false},{"type":"reject","startNodeId":"humanInputAgentflow_0","isFulfilled":true}]}},"status":"FINISHED"},{"nodeId":"llmAgentflow_2","nodeLabel":"Rewriter","data":{"id":"llmAgentflow_2","name":"llmAgentflow","input":{"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"write a poem"},{"role":"assistant","content":"Hello from the fake LLM! This answer is streamed token by token.\n\nDo you approve the draft?"}]},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}}},"status":"FINISHED"}],"usageMetadata":[{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}],"text":"Hello from the fake LLM! This answer is streamed token by token.","request":{"overrideConfig":{"sessionId":"sess-3a8a4ea4"},"humanInput":{"type":"reject"}},"model_calls":1}""",
        ),
        (
            "ap_stop_json",
            r"""{"streamed":false,"text":"\nAttempting to use tool:\n```json\n{\n  \"name\": \"calculator\",\n  \"args\": {\n    \"input\": \"2 + 2\"\n  },\n  \"id\": \"call_77e91dc8\",\n  \"type\": \"tool_call\"\n}\n```","executionId":"02fbb891-aea8-4120-aed3-70e2209cf474","action":{"id":"a57acb05-16b1-4740-be72-343defec6edd","mapping":{"approve":"Proceed","reject":"Reject"},"elements":[{"type":"agentflowv2-approve-button","label":"Proceed"},{"type":"agentflowv2-reject-button","label":"Reject"}],"data":{"nodeId":"agentAgentflow_0","nodeLabel":"Careful Calculator","input":{"messages":[{"role":"system","content":"You have a calculator."},{"role":"user","content":"what is 2 + 2?"},{"role":"assistant","content":"\nAttempting to use tool:\n```json\n{\n  \"name\": \"calculator\",\n  \"args\": {\n    \"input\": \"2 + 2\"\n  },\n  \"id\": \"call_77e91dc8\",\n  \"type\": \"tool_call\"\n}\n```","tool_calls":[{"name":"calculator","args":{"input":"2 + 2"},"id":"call_77e91dc8","type":"tool_call"}],"usage_metadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}},"id":"chatcmpl-454e9e17ba14"}],"agentTools":[{"agentSelectedTool":"calculator","agentSelectedToolRequiresHumanInput":true}]}}},"agentFlowExecutedData":[{"nodeId":"startAgentflow_0","nodeLabel":"Start","data":{"id":"startAgentflow_0","name":"startAgentflow","input":{"question":"what is 2 + 2?"},"output":{"question":"what is 2 + 2?"}},"status":"FINISHED"},{"nodeId":"agentAgentflow_0","nodeLabel":"Careful Calculator","data":{"id":"agentAgentflow_0","name":"agentAgentflow","input":{"messages":[{"role":"system","content":"You have a calculator."},{"role":"user","content":"what is 2 + 2?"},{"role":"assistant","content":"\nAttempting to use tool:\n```json\n{\n  \"name\": \"calculator\",\n  \"args\": {\n    \"input\": \"2 + 2\"\n  },\n  \"id\": \"call_77e91dc8\",\n  \"type\": \"tool_call\"\n}\n```","tool_calls":[{"name":"calculator","args":{"input":"2 + 2"},"id":"call_77e91dc8","type":"tool_call"}],"usage_metadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}},"id":"chatcmpl-454e9e17ba14"}],"agentTools":[{"agentSelectedTool":"calculator","agentSelectedToolRequiresHumanInput":true}]},"output":{"content":"\nAttempting to use tool:\n```json\n{\n  \"name\": \"calculator\",\n  \"args\": {\n    \"input\": \"2 + 2\"\n  },\n  \"id\": \"call_77e91dc8\",\n  \"type\": \"tool_call\"\n}\n```","calledTools":[{"name":"calculator","args":{"input":"2 + 2"},"id":"call_77e91dc8","type":"tool_call"}],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":44,"input_token_details":{},"output_token_details":{},"tool_call_tokens":22},"availableTools":[{"name":"calculator","toolNode":{"name":"calculator"}}],"isWaitingForHumanInput":true,"humanInputAction":{"id":"a57acb05-16b1-4740-be72-343defec6edd","mapping":{"approve":"Proceed","reject":"Reject"},"elements":[{"type":"agentflowv2-approve-button","label":"Proceed"},{"type":"agentflowv2-reject-button","label":"Reject"}],"data":{"nodeId":"agentAgentflow_0","nodeLabel":"Careful Calculator","input":{"messages":[{"role":"system","content":"You have a calculator."},{"role":"user","content":"what is 2 + 2?"},{"role":"assistant","content":"\nAttempting to use tool:\n```json\n{\n  \"name\": \"calculator\",\n  \"args\": {\n    \"input\": \"2 + 2\"\n  },\n  \"id\": \"call_77e91dc8\",\n  \"type\": \"tool_call\"\n}\n```","tool_calls":[{"name":"calculator","args":{"input":"2 + 2"},"id":"call_77e91dc8","type":"tool_call"}],"usage_metadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}},"id":"chatcmpl-454e9e17ba14"}],"agentTools":[{"agentSelectedTool":"calculator","agentSelectedToolRequiresHumanInput":true}]}}}}},"status":"STOPPED"}],"request":{"question":"what is 2 + 2?","chatId":"45b705c2-931e-4ac5-97b6-371521e1eca3"},"model_calls":1}""",
        ),
        (
            "ap_proceed_json",
            r"""{"streamed":false,"text":"The tool said: 4.","executionId":"02fbb891-aea8-4120-aed3-70e2209cf474","agentFlowExecutedData":[{"nodeId":"startAgentflow_0","nodeLabel":"Start","data":{"id":"startAgentflow_0","name":"startAgentflow","input":{"question":"what is 2 + 2?"},"output":{"question":"what is 2 + 2?"}},"status":"FINISHED"},{"nodeId":"agentAgentflow_0","nodeLabel":"Careful Calculator","data":{"id":"agentAgentflow_0","name":"agentAgentflow","input":{"messages":[{"role":"system","content":"You have a calculator."},{"role":"user","content":"what is 2 + 2?"},{"role":"assistant","content":"\nAttempting to use tool:\n```json\n{\n  \"name\": \"calculator\",\n  \"args\": {\n    \"input\": \"2 + 2\"\n  },\n  \"id\": \"call_77e91dc8\",\n  \"type\": \"tool_call\"\n}\n```","tool_calls":[{"name":"calculator","args":{"input":"2 + 2"},"id":"call_77e91dc8","type":"tool_call"}],"usage_metadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}},"id":"chatcmpl-454e9e17ba14"},{"role":"tool","content":"4","tool_call_id":"call_77e91dc8","name":"calculator"}],"agentTools":[{"agentSelectedTool":"calculator","agentSelectedToolRequiresHumanInput":true}],"humanInput":{"type":"proceed","startNodeId":"agentAgentflow_0"}},"output":{"content":"The tool said: 4.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":66,"input_token_details":{},"output_token_details":{},"tool_call_tokens":44},"usedTools":[{"tool":"calculator","toolInput":{"input":"2 + 2"},"toolOutput":"4"}],"availableTools":[{"name":"calculator","toolNode":{"name":"calculator"}}]}},"status":"FINISHED"}],"request":{"question":"Proceed","chatId":"45b705c2-931e-4ac5-97b6-371521e1eca3","humanInput":{"type":"proceed","startNodeId":"agentAgentflow_0"}},"model_calls":1}""",
        ),
        (
            "ap_stop2_stream",
            r"""{"streamed":true,"events":["agentFlowEvent:INPROGRESS","nextAgentFlow:INPROGRESS","nextAgentFlow:FINISHED","agentFlowExecutedData","nextAgentFlow:INPROGRESS","token","token","token","token","token","token","token","calledTools","token","calledTools","usageMetadata","nextAgentFlow:STOPPED","agentFlowExecutedData","agentFlowEvent:STOPPED","action","agentFlowEvent:STOPPED","metadata","end"],"action":{"id":"d2ed3d28-0683-41be-b5e7-252f321701b9","mapping":{"approve":"Proceed","reject":"Reject"},"elements":[{"type":"agentflowv2-approve-button","label":"Proceed"},{"type":"agentflowv2-reject-button","label":"Reject"}],"data":{"nodeId":"agentAgentflow_0","nodeLabel":"Careful Calculator","input":{"messages":[{"role":"system","content":"You have a calculator."},{"role":"user","content":"what is 3 + 3?"},{"role":"assistant","content":"\nAttempting to use tool:\n```json\n{\n  \"name\": \"calculator\",\n  \"args\": {\n    \"input\": \"2 + 2\"\n  },\n  \"id\": \"call_f2361630\",\n  \"type\": \"tool_call\"\n}\n```","tool_calls":[{"name":"calculator","args":{"input":"2 + 2"},"id":"call_f2361630","type":"tool_call"}],"usage_metadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}},"id":"chatcmpl-d65ca31d8248"}],"agentTools":[{"agentSelectedTool":"calculator","agentSelectedToolRequiresHumanInput":true}]}}},"agentFlowExecutedData":[{"nodeId":"startAgentflow_0","nodeLabel":"Start","data":{"id":"startAgentflow_0","name":"startAgentflow","input":{"question":"what is 3 + 3?"},"output":{"question":"what is 3 + 3?"}},"status":"FINISHED"},{"nodeId":"agentAgentflow_0","nodeLabel":"Careful Calculator","data":{"id":"agentAgentflow_0","name":"agentAgentflow","input":{"messages":[{"role":"system","content":"You have a calculator."},{"role":"user","content":"what is 3 + 3?"},{"role":"assistant","content":"\nAttempting to use tool:\n```json\n{\n  \"name\": \"calculator\",\n  \"args\": {\n    \"input\": \"2 + 2\"\n  },\n  \"id\": \"call_f2361630\",\n  \"type\": \"tool_call\"\n}\n```","tool_calls":[{"name":"calculator","args":{"input":"2 + 2"},"id":"call_f2361630","type":"tool_call"}],"usage_metadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}},"id":"chatcmpl-d65ca31d8248"}],"agentTools":[{"agentSelectedTool":"calculator","agentSelectedToolRequiresHumanInput":true}]},"output":{"content":"\nAttempting to use tool:\n```json\n{\n  \"name\": \"calculator\",\n  \"args\": {\n    \"input\": \"2 + 2\"\n  },\n  \"id\": \"call_f2361630\",\n  \"type\": \"tool_call\"\n}\n```","calledTools":[{"name":"calculator","args":{"input":"2 + 2"},"id":"call_f2361630","type":"tool_call"}],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":44,"input_token_details":{},"output_token_details":{},"tool_call_tokens":22},"availableTools":[{"name":"calculator","toolNode":{"name":"calculator"}}],"isWaitingForHumanInput":true,"humanInputAction":{"id":"d2ed3d28-0683-41be-b5e7-252f321701b9","mapping":{"approve":"Proceed","reject":"Reject"},"elements":[{"type":"agentflowv2-approve-button","label":"Proceed"},{"type":"agentflowv2-reject-button","label":"Reject"}],"data":{"nodeId":"agentAgentflow_0","nodeLabel":"Careful Calculator","input":{"messages":[{"role":"system","content":"You have a calculator."},{"role":"user","content":"what is 3 + 3?"},{"role":"assistant","content":"\nAttempting to use tool:\n```json\n{\n  \"name\": \"calculator\",\n  \"args\": {\n    \"input\": \"2 + 2\"\n  },\n  \"id\": \"call_f2361630\",\n  \"type\": \"tool_call\"\n}\n```","tool_calls":[{"name":"calculator","args":{"input":"2 + 2"},"id":"call_f2361630","type":"tool_call"}],"usage_metadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}},"id":"chatcmpl-d65ca31d8248"}],"agentTools":[{"agentSelectedTool":"calculator","agentSelectedToolRequiresHumanInput":true}]}}}}},"status":"STOPPED"}],"usageMetadata":[{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}],"text":"\nAttempting to use tool:\n```json\n{\n  \"name\": \"calculator\",\n  \"args\": {\n    \"input\": \"2 + 2\"\n  },\n  \"id\": \"call_f2361630\",\n  \"type\": \"tool_call\"\n}\n```","request":{"question":"what is 3 + 3?","chatId":"234e49a6-5494-4749-93f9-4041a28f1cf6"},"model_calls":1}""",
        ),
        (
            "ap_reject_stream",
            r"""{"streamed":true,"events":["agentFlowEvent:INPROGRESS","nextAgentFlow:INPROGRESS","calledTools","token","token","token","token","token","token","token","token","token","token","token","token","token","token","token","calledTools","usageMetadata","nextAgentFlow:FINISHED","agentFlowExecutedData","agentFlowEvent:FINISHED","metadata","end"],"action":null,"agentFlowExecutedData":[{"nodeId":"startAgentflow_0","nodeLabel":"Start","data":{"id":"startAgentflow_0","name":"startAgentflow","input":{"question":"what is 3 + 3?"},"output":{"question":"what is 3 + 3?"}},"status":"FINISHED"},{"nodeId":"agentAgentflow_0","nodeLabel":"Careful Calculator","data":{"id":"agentAgentflow_0","name":"agentAgentflow","input":{"messages":[{"role":"system","content":"You have a calculator."},{"role":"user","content":"what is 3 + 3?"}],"agentTools":[{"agentSelectedTool":"calculator","agentSelectedToolRequiresHumanInput":true}],"humanInput":{"type":"reject","startNodeId":"agentAgentflow_0"}},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":66,"input_token_details":{},"output_token_details":{},"tool_call_tokens":44},"availableTools":[{"name":"calculator","toolNode":{"name":"calculator"}}]}},"status":"FINISHED"}],"usageMetadata":[{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}],"text":"Hello from the fake LLM! This answer is streamed token by token.","request":{"question":"Reject","chatId":"234e49a6-5494-4749-93f9-4041a28f1cf6","humanInput":{"type":"reject","startNodeId":"agentAgentflow_0"}},"model_calls":1}""",
        ),
        (
            "two_stop1_json",
            r"""{"streamed":false,"text":"Hello from the fake LLM! This answer is streamed token by token.\n\nFirst check?","executionId":"678efafa-4325-43ed-8931-ad4fda237b88","action":{"id":"4f1af836-05eb-4efb-a515-6d30cd2a117a","mapping":{"approve":"Proceed","reject":"Reject"},"elements":[{"type":"agentflowv2-approve-button","label":"Proceed"},{"type":"agentflowv2-reject-button","label":"Reject"}],"data":{"nodeId":"humanInputAgentflow_0","nodeLabel":"Check 1","input":{"messages":[{"role":"user","content":"write"},{"role":"user","content":"Hello from the fake LLM! This answer is streamed token by token.","name":"draft"}],"humanInputEnableFeedback":false}}},"agentFlowExecutedData":[{"nodeId":"startAgentflow_0","nodeLabel":"Start","data":{"id":"startAgentflow_0","name":"startAgentflow","input":{"question":"write"},"output":{"question":"write"}},"status":"FINISHED"},{"nodeId":"llmAgentflow_0","nodeLabel":"Draft","data":{"id":"llmAgentflow_0","name":"llmAgentflow","input":{"messages":[{"role":"system","content":"x"},{"role":"user","content":"write"}]},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}}},"status":"FINISHED"},{"nodeId":"humanInputAgentflow_0","nodeLabel":"Check 1","data":{"id":"humanInputAgentflow_0","name":"humanInputAgentflow","input":{"messages":[{"role":"user","content":"write"},{"role":"user","content":"Hello from the fake LLM! This answer is streamed token by token.","name":"draft"}],"humanInputEnableFeedback":false},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.\n\nFirst check?","humanInputAction":{"id":"4f1af836-05eb-4efb-a515-6d30cd2a117a","mapping":{"approve":"Proceed","reject":"Reject"},"elements":[{"type":"agentflowv2-approve-button","label":"Proceed"},{"type":"agentflowv2-reject-button","label":"Reject"}],"data":{"nodeId":"humanInputAgentflow_0","nodeLabel":"Check 1","input":{"messages":[{"role":"user","content":"write"},{"role":"user","content":"Hello from the fake LLM! This answer is streamed token by token.","name":"draft"}],"humanInputEnableFeedback":false}}}}},"status":"STOPPED"}],"request":{"question":"write","chatId":"bd9c9e24-f51e-472d-b3cb-1f64d96ab12d"},"model_calls":1}""",
        ),
        (
            "two_resume1_json",
            r"""{"streamed":false,"text":"Hello from the fake LLM! This answer is streamed token by token.","executionId":"678efafa-4325-43ed-8931-ad4fda237b88","action":{"id":"2d9cbfcc-7964-48b0-8bce-901c7f40209a","mapping":{"approve":"Proceed","reject":"Reject"},"elements":[{"type":"agentflowv2-approve-button","label":"Proceed"},{"type":"agentflowv2-reject-button","label":"Reject"}],"data":{"nodeId":"humanInputAgentflow_1","nodeLabel":"Check 2","input":{"messages":[{"content":"write","role":"user"},{"content":"Hello from the fake LLM! This answer is streamed token by token.\n\nFirst check?","role":"assistant"},{"role":"user","content":"Proceed"},{"role":"user","content":"Hello from the fake LLM! This answer is streamed token by token.","name":"polish"}],"humanInputEnableFeedback":true}}},"agentFlowExecutedData":[{"nodeId":"startAgentflow_0","nodeLabel":"Start","data":{"id":"startAgentflow_0","name":"startAgentflow","input":{"question":"write"},"output":{"question":"write"}},"status":"FINISHED"},{"nodeId":"llmAgentflow_0","nodeLabel":"Draft","data":{"id":"llmAgentflow_0","name":"llmAgentflow","input":{"messages":[{"role":"system","content":"x"},{"role":"user","content":"write"}]},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}}},"status":"FINISHED"},{"nodeId":"humanInputAgentflow_0","nodeLabel":"Check 1","data":{"id":"humanInputAgentflow_0","name":"humanInputAgentflow","input":{"type":"proceed","startNodeId":"humanInputAgentflow_0","messages":[{"content":"write","role":"user"},{"content":"Hello from the fake LLM! This answer is streamed token by token.\n\nFirst check?","role":"assistant"},{"role":"user","content":"proceed"}]},"output":{"content":"proceed","conditions":[{"type":"proceed","startNodeId":"humanInputAgentflow_0","isFulfilled":true},{"type":"reject","startNodeId":"humanInputAgentflow_0","isFulfilled":false}]}},"status":"FINISHED"},{"nodeId":"llmAgentflow_1","nodeLabel":"Polish","data":{"id":"llmAgentflow_1","name":"llmAgentflow","input":{"messages":[{"role":"system","content":"x"},{"role":"user","content":"write"},{"role":"assistant","content":"Hello from the fake LLM! This answer is streamed token by token.\n\nFirst check?"},{"role":"user","content":"Proceed"}]},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}}},"status":"FINISHED"},{"nodeId":"humanInputAgentflow_1","nodeLabel":"Check 2","data":{"id":"humanInputAgentflow_1","name":"humanInputAgentflow","input":{"messages":[{"content":"write","role":"user"},{"content":"Hello from the fake LLM! This answer is streamed token by token.\n\nFirst check?","role":"assistant"},{"role":"user","content":"Proceed"},{"role":"user","content":"Hello from the fake LLM! This answer is streamed token by token.","name":"polish"}],"humanInputEnableFeedback":true},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","humanInputAction":{"id":"2d9cbfcc-7964-48b0-8bce-901c7f40209a","mapping":{"approve":"Proceed","reject":"Reject"},"elements":[{"type":"agentflowv2-approve-button","label":"Proceed"},{"type":"agentflowv2-reject-button","label":"Reject"}],"data":{"nodeId":"humanInputAgentflow_1","nodeLabel":"Check 2","input":{"messages":[{"content":"write","role":"user"},{"content":"Hello from the fake LLM! This answer is streamed token by token.\n\nFirst check?","role":"assistant"},{"role":"user","content":"Proceed"},{"role":"user","content":"Hello from the fake LLM! This answer is streamed token by token.","name":"polish"}],"humanInputEnableFeedback":true}}}}},"status":"STOPPED"}],"request":{"question":"Proceed","chatId":"bd9c9e24-f51e-472d-b3cb-1f64d96ab12d","humanInput":{"type":"proceed","startNodeId":"humanInputAgentflow_0"}},"model_calls":2}""",
        ),
        (
            "two_resume2_stream",
            r"""{"streamed":true,"events":["agentFlowEvent:INPROGRESS","nextAgentFlow:INPROGRESS","nextAgentFlow:FINISHED","agentFlowExecutedData","nextAgentFlow:INPROGRESS","token","token","token","token","token","token","token","token","token","token","token","token","token","token","token","calledTools","usageMetadata","nextAgentFlow:FINISHED","agentFlowExecutedData","agentFlowEvent:FINISHED","metadata","end"],"action":null,"agentFlowExecutedData":[{"nodeId":"startAgentflow_0","nodeLabel":"Start","data":{"id":"startAgentflow_0","name":"startAgentflow","input":{"question":"write"},"output":{"question":"write"}},"status":"FINISHED"},{"nodeId":"llmAgentflow_0","nodeLabel":"Draft","data":{"id":"llmAgentflow_0","name":"llmAgentflow","input":{"messages":[{"role":"system","content":"x"},{"role":"user","content":"write"}]},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}}},"status":"FINISHED"},{"nodeId":"humanInputAgentflow_0","nodeLabel":"Check 1","data":{"id":"humanInputAgentflow_0","name":"humanInputAgentflow","input":{"type":"proceed","startNodeId":"humanInputAgentflow_0","messages":[{"content":"write","role":"user"},{"content":"Hello from the fake LLM! This answer is streamed token by token.\n\nFirst check?","role":"assistant"},{"role":"user","content":"proceed"}]},"output":{"content":"proceed","conditions":[{"type":"proceed","startNodeId":"humanInputAgentflow_0","isFulfilled":true},{"type":"reject","startNodeId":"humanInputAgentflow_0","isFulfilled":false}]}},"status":"FINISHED"},{"nodeId":"llmAgentflow_1","nodeLabel":"Polish","data":{"id":"llmAgentflow_1","name":"llmAgentflow","input":{"messages":[{"role":"system","content":"x"},{"role":"user","content":"write"},{"role":"assistant","content":"Hello from the fake LLM! This answer is streamed token by token.\n\nFirst check?"},{"role":"user","content":"Proceed"}]},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}}},"status":"FINISHED"},{"nodeId":"humanInputAgentflow_1","nodeLabel":"Check 2","data":{"id":"humanInputAgentflow_1","name":"humanInputAgentflow","input":{"type":"proceed","startNodeId":"humanInputAgentflow_1","feedback":"ship it","messages":[{"content":"write","role":"user"},{"content":"Hello from the fake LLM! This answer is streamed token by token.\n\nFirst check?","role":"assistant"},{"content":"Proceed","role":"user"},{"content":"Hello from the fake LLM! This answer is streamed token by token.","role":"assistant"},{"role":"user","content":"ship it"}]},"output":{"content":"ship it","conditions":[{"type":"proceed","startNodeId":"humanInputAgentflow_1","feedback":"ship it","isFulfilled":true},{"type":"reject","startNodeId":"humanInputAgentflow_1","feedback":"ship it","isFulfilled":false}]}},"status":"FINISHED"},{"nodeId":"llmAgentflow_2","nodeLabel":"Publish","data":{"id":"llmAgentflow_2","name":"llmAgentflow","input":{"messages":[{"role":"system","content":"x"},{"role":"user","content":"write"},{"role":"assistant","content":"Hello from the fake LLM! This answer is streamed token by token.\n\nFirst check?"},{"role":"user","content":"Proceed"},{"role":"assistant","content":"Hello from the fake LLM! This answer is streamed token by token."},{"role":"user","content":"ship it"}]},"output":{"content":"Hello from the fake LLM! This answer is streamed token by token.","calledTools":[],"usageMetadata":{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}}},"status":"FINISHED"}],"usageMetadata":[{"input_tokens":10,"output_tokens":12,"total_tokens":22,"input_token_details":{},"output_token_details":{}}],"text":"Hello from the fake LLM! This answer is streamed token by token.","request":{"question":"ship it","chatId":"e8b7918b-e023-4f10-aaaf-219f42539f63","humanInput":{"type":"proceed","startNodeId":"humanInputAgentflow_1","feedback":"ship it"}},"model_calls":1}""",
        ),
    )
}

BUTTONS = {
    "mapping": {"approve": "Proceed", "reject": "Reject"},
    "elements": [
        {"type": "agentflowv2-approve-button", "label": "Proceed"},
        {"type": "agentflowv2-reject-button", "label": "Reject"},
    ],
}
DRAFT = "Hello from the fake LLM! This answer is streamed token by token."
HI_INPUT = {
    "messages": [{"role": "user", "content": "write a haiku"}, {"role": "user", "content": DRAFT, "name": "writer"}],
    "humanInputEnableFeedback": True,
}
HI_ACTION = {
    "id": "c84c7dc6",
    **BUTTONS,
    "data": {"nodeId": "humanInputAgentflow_0", "nodeLabel": "Review", "input": HI_INPUT},
}
HI_PROMPT = f"{DRAFT}\n\nDo you approve the draft?"

CALL = {"name": "calculator", "args": {"input": "2 + 2"}, "id": "call_77e91dc8", "type": "tool_call"}
CK_TEXT = "\nAttempting to use tool:\n```json\n" + json.dumps(CALL, indent=2) + "\n```"
CHECKPOINT = [
    {"role": "system", "content": "You have a calculator."},
    {"role": "user", "content": "what is 2 + 2?"},
    {
        "role": "assistant",
        "content": CK_TEXT,
        "tool_calls": [CALL],
        "usage_metadata": {"input_tokens": 10, "output_tokens": 12, "total_tokens": 22},
        "id": "chatcmpl-454e9e17ba14",
    },
]
AGENT_INPUT = {
    "messages": CHECKPOINT,
    "agentModel": "chatOpenAI",
    "agentTools": [
        {
            "agentSelectedTool": "calculator",
            "agentSelectedToolRequiresHumanInput": True,
            "agentSelectedToolConfig": {"agentSelectedTool": "calculator"},
        },
        {"agentSelectedTool": "currentDateTime", "agentSelectedToolRequiresHumanInput": ""},
    ],
}
AGENT_ACTION = {
    "id": "a57acb05",
    **BUTTONS,
    "data": {"nodeId": "agentAgentflow_0", "nodeLabel": "Careful Calculator", "input": AGENT_INPUT},
}
START = {
    "nodeId": "startAgentflow_0",
    "nodeLabel": "Start",
    "status": "FINISHED",
    "data": {"id": "startAgentflow_0", "name": "startAgentflow", "input": {}, "output": {}},
}


def real_interrupt(name: str) -> Interrupt | None:
    """``interrupt_from`` over a real exchange, fed as the client sees it (stream or JSON)."""
    cap = REAL_314[name]
    statuses = [e.split(":", 1)[1] for e in cap.get("events", ()) if e.startswith("agentFlowEvent:")]
    return interrupt_from(
        cap.get("action"),
        cap["agentFlowExecutedData"],
        status=statuses[-1] if statuses else None,
        execution_id=cap.get("executionId"),
        text=cap["text"],
    )


STOPS = {
    # name: (kind, node id, label, feedback enabled, description)
    "hi_stop_json": ("human_input", "humanInputAgentflow_0", "Review", True, "Do you approve the draft?"),
    "hi_stop_session_stream": ("human_input", "humanInputAgentflow_0", "Review", True, "Do you approve the draft?"),
    "ap_stop_json": ("tool_approval", "agentAgentflow_0", "Careful Calculator", False, None),
    "ap_stop2_stream": ("tool_approval", "agentAgentflow_0", "Careful Calculator", False, None),
    "two_stop1_json": ("human_input", "humanInputAgentflow_0", "Check 1", False, "First check?"),
    # the second stop of the same run: the description is the model's text (dynamic mode)
    "two_resume1_json": ("human_input", "humanInputAgentflow_1", "Check 2", True, DRAFT),
}


@pytest.mark.parametrize("name", sorted(STOPS))
def test_real_stops(name: str) -> None:
    kind, node_id, label, feedback, description = STOPS[name]
    cap = REAL_314[name]
    interrupt = real_interrupt(name)
    assert interrupt is not None
    assert (interrupt.kind, interrupt.node_id, interrupt.node_label) == (kind, node_id, label)
    assert (interrupt.feedback_enabled, interrupt.description, interrupt.status) == (feedback, description, "STOPPED")
    assert interrupt.prompt == cap["text"]  # what the stream's tokens / the JSON text showed the human
    assert [d.label for d in interrupt.decisions] == ["Proceed", "Reject"]
    assert interrupt.execution_id == cap.get("executionId")  # only the JSON reply has it
    if kind == "tool_approval":
        [call] = interrupt.tool_calls
        assert (call.name, call.args, call.requires_approval) == ("calculator", {"input": "2 + 2"}, True)
        assert interrupt.checkpoint_messages[-1]["tool_calls"][0]["id"] == call.id
    assert run_status(cap["agentFlowExecutedData"]) == "STOPPED"
    # before 3.1.2 the executed data is the only place the action is: same interrupt from it alone
    alone = interrupt_from(None, cap["agentFlowExecutedData"], text=cap["text"])
    assert alone is not None
    assert alone.model_dump(exclude={"execution_id"}) == interrupt.model_dump(exclude={"execution_id"})


@pytest.mark.parametrize(
    ("stop", "resume"),
    [
        ("hi_stop_json", "hi_proceed_json"),
        ("hi_stop_session_stream", "hi_reject_session_stream"),
        ("ap_stop_json", "ap_proceed_json"),
        ("ap_stop2_stream", "ap_reject_stream"),
        ("two_stop1_json", "two_resume1_json"),
    ],
)
def test_real_resumes(stop: str, resume: str) -> None:
    interrupt = real_interrupt(stop)
    assert interrupt is not None
    sent = REAL_314[resume]["request"]
    human = sent["humanInput"]
    approve, feedback = human["type"] == "proceed", human.get("feedback")
    fields = interrupt.resume_fields(approve=approve, feedback=feedback)
    # what was sent (as Flowise's UI sends it; one request also left out question and startNodeId, and resumed)
    if "question" in sent:
        assert fields == {"question": sent["question"], "humanInput": human}
    assert fields["humanInput"]["type"] == human["type"]
    # the resumed run names the node it resumed, with the startNodeId Flowise resolved
    assert resumed_node(REAL_314[resume]["agentFlowExecutedData"]) == interrupt.node_id
    if resume == "ap_proceed_json":  # the resumed run keeps the stopped run's execution
        assert REAL_314[resume]["executionId"] == interrupt.execution_id


@pytest.mark.parametrize("name", ["hi_proceed_json", "ap_proceed_json", "ap_reject_stream", "two_resume2_stream"])
def test_real_finished_resumes_carry_no_interrupt(name: str) -> None:
    cap = REAL_314[name]
    assert real_interrupt(name) is None
    assert run_status(cap["agentFlowExecutedData"]) == "FINISHED"


def hi_stopped() -> list[dict[str, Any]]:
    """The executed data of a run stopped at a Human Input node (3.1.4)."""
    return [
        START,
        {"nodeId": "llmAgentflow_0", "nodeLabel": "Writer", "status": "FINISHED", "data": {"name": "llmAgentflow"}},
        {
            "nodeId": "humanInputAgentflow_0",
            "nodeLabel": "Review",
            "status": "STOPPED",
            "previousNodeIds": ["llmAgentflow_0"],
            "data": {
                "id": "humanInputAgentflow_0",
                "name": "humanInputAgentflow",
                "input": HI_INPUT,
                "output": {"content": HI_PROMPT, "humanInputAction": HI_ACTION},
                "chatHistory": [{"role": "assistant", "content": HI_PROMPT}],
            },
        },
    ]


def agent_stopped() -> list[dict[str, Any]]:
    """The executed data of an Agent stopped before a tool that requires approval (3.1.4)."""
    return [
        START,
        {
            "nodeId": "agentAgentflow_0",
            "nodeLabel": "Careful Calculator",
            "status": "STOPPED",
            "data": {
                "id": "agentAgentflow_0",
                "name": "agentAgentflow",
                "input": AGENT_INPUT,
                "output": {
                    "content": CK_TEXT,
                    "calledTools": [CALL],
                    "usageMetadata": {"input_tokens": 10, "output_tokens": 12, "total_tokens": 44},
                    "availableTools": [
                        {"name": "calculator", "toolNode": {"label": "Calculator", "name": "calculator"}},
                        {"name": "current_date_time", "toolNode": {"name": "currentDateTime"}},
                    ],
                    "isWaitingForHumanInput": True,
                    "humanInputAction": AGENT_ACTION,
                },
            },
        },
    ]


# ------------------------------------------------------------------------------------------- human input


@pytest.mark.parametrize("where", ["json 3.1.2+", "stream action event", "metadata string", "executed data only"])
def test_human_input_stop(where: str) -> None:
    executed = hi_stopped()
    if where == "json 3.1.2+":
        interrupt = interrupt_from(HI_ACTION, executed, execution_id="ab52352f", chat_id="c1", session_id="c1")
    elif where == "stream action event":
        interrupt = interrupt_from(HI_ACTION, executed, status="STOPPED", text=HI_PROMPT)
    elif where == "metadata string":  # a chat-message row keeps the action as a JSON string
        interrupt = interrupt_from(json.dumps(HI_ACTION), None, text=HI_PROMPT)
    else:  # before 3.1.2 the action is only the STOPPED node's output.humanInputAction
        interrupt = interrupt_from(None, executed)
    assert interrupt is not None
    assert (interrupt.kind, interrupt.protocol) == ("human_input", "agentflow_v2")
    assert (interrupt.node_id, interrupt.node_label) == ("humanInputAgentflow_0", "Review")
    assert interrupt.prompt == HI_PROMPT
    assert interrupt.description == "Do you approve the draft?"  # fixed mode repeats the previous message first
    assert interrupt.decisions == [Decision(value="proceed", label="Proceed"), Decision(value="reject", label="Reject")]
    assert interrupt.feedback_enabled is True
    assert interrupt.tool_calls == []
    assert interrupt.status == "STOPPED"
    assert interrupt.action_id == "c84c7dc6"
    assert interrupt.action["data"]["nodeId"] == "humanInputAgentflow_0"
    if where == "json 3.1.2+":
        assert (interrupt.execution_id, interrupt.chat_id, interrupt.session_id) == ("ab52352f", "c1", "c1")


def test_human_input_resume_body_matches_flowises_ui() -> None:
    interrupt = interrupt_from(HI_ACTION, hi_stopped())
    assert interrupt is not None
    assert interrupt.resume_fields(approve=True, feedback="looks good") == {
        "question": "looks good",
        "humanInput": {"type": "proceed", "startNodeId": "humanInputAgentflow_0", "feedback": "looks good"},
    }
    assert interrupt.resume_fields(approve=False) == {
        "question": "Reject",
        "humanInput": {"type": "reject", "startNodeId": "humanInputAgentflow_0"},
    }
    body = PredictionRequest(human_input=interrupt.human_input(approve=True), chat_id="c1").to_body()
    assert body == {"chatId": "c1", "humanInput": {"type": "proceed", "startNodeId": "humanInputAgentflow_0"}}


def test_human_input_body() -> None:
    assert human_input_body("n1", approve=True) == {"type": "proceed", "startNodeId": "n1"}
    assert human_input_body(None, approve=False, feedback="no") == {"type": "reject", "feedback": "no"}
    assert human_input_body("", approve=False, feedback="") == {"type": "reject"}
    # the same wire shape as the request model's HumanInput
    typed = HumanInput(type="proceed", start_node_id="n1", feedback="ok").model_dump(by_alias=True)
    assert human_input_body("n1", approve=True, feedback="ok") == typed


def test_dynamic_description_is_the_whole_prompt() -> None:
    executed = hi_stopped()
    executed[-1]["data"]["output"]["content"] = "Shall I publish the haiku?"
    interrupt = interrupt_from(None, executed)
    assert interrupt is not None
    assert interrupt.description == "Shall I publish the haiku?"


# ------------------------------------------------------------------------------------------ tool approval


@pytest.mark.parametrize("with_executed", [True, False])
def test_tool_approval_stop(with_executed: bool) -> None:
    interrupt = interrupt_from(AGENT_ACTION, agent_stopped() if with_executed else None, text=CK_TEXT)
    assert interrupt is not None
    assert (interrupt.kind, interrupt.node_id, interrupt.node_label) == (
        "tool_approval",
        "agentAgentflow_0",
        "Careful Calculator",
    )
    assert interrupt.prompt == CK_TEXT
    assert interrupt.description is None
    assert interrupt.feedback_enabled is False  # the Agent ignores feedback on resume
    [call] = interrupt.tool_calls
    assert (call.name, call.args, call.id, call.requires_approval) == (
        "calculator",
        {"input": "2 + 2"},
        CALL["id"],
        True,
    )
    assert call.model_extra == {"type": "tool_call"}
    assert interrupt.checkpoint_messages == CHECKPOINT
    assert interrupt.resume_fields(approve=True)["humanInput"] == {"type": "proceed", "startNodeId": "agentAgentflow_0"}


def test_tool_names_map_to_their_component_for_the_approval_flag() -> None:
    executed = agent_stopped()
    other = {"name": "current_date_time", "args": {}, "id": "call_2"}
    executed[-1]["data"]["output"]["calledTools"] = [CALL, other]
    interrupt = interrupt_from(None, executed)
    assert interrupt is not None
    assert [(c.name, c.requires_approval) for c in interrupt.tool_calls] == [
        ("calculator", True),
        ("current_date_time", False),
    ]


def test_sequential_agents_interrupt() -> None:
    action = {
        "id": "s1",
        "mapping": {"approve": "Yes, go", "reject": "Stop", "toolCalls": [{"name": "search", "args": {"q": "x"}}]},
        "elements": [{"type": "approve-button", "label": "Yes, go"}, {"type": "reject-button", "label": "Stop"}],
    }
    interrupt = interrupt_from(action, None, text="Do you want to proceed?")
    assert interrupt is not None
    assert (interrupt.kind, interrupt.protocol, interrupt.node_id) == ("tool_approval", "sequential_agents", None)
    assert interrupt.prompt == "Do you want to proceed?"
    assert [(c.name, c.args, c.requires_approval) for c in interrupt.tool_calls] == [("search", {"q": "x"}, None)]
    assert [d.label for d in interrupt.decisions] == ["Yes, go", "Stop"]
    assert interrupt.resume_fields(approve=False) == {"question": "Stop", "action": action}
    default = interrupt_from({"id": "s2", "mapping": {"toolCalls": []}}, None)
    assert default is not None
    assert [d.label for d in default.decisions] == ["Yes", "No"]


# ------------------------------------------------------------------------------------------------ no stop


@pytest.mark.parametrize(
    "name", ["agentflow_v2_llm_nonstream", "agentflow_v2_agent_tool_stream", "llm_chain_stream", "tool_agent_nonstream"]
)
def test_real_runs_that_did_not_stop(name: str) -> None:
    head, _, body = (CAPTURES / f"{name}.txt").read_bytes().partition(b"\r\n\r\n")
    if b"text/event-stream" in head:
        events = [json.loads(line[5:]) for line in body.split(b"\n") if line.startswith(b"data:")]
        action = next((e["data"] for e in events if e["event"] == "action"), None)
        executed = next((e["data"] for e in reversed(events) if e["event"] == "agentFlowExecutedData"), None)
        status = next((e["data"] for e in reversed(events) if e["event"] == "agentFlowEvent"), None)
    else:
        reply = json.loads(body)
        action, executed, status = reply.get("action"), reply.get("agentFlowExecutedData"), None
    assert interrupt_from(action, executed, status=status) is None
    assert run_status(executed) in (None, "FINISHED")


def test_a_finished_status_without_action_is_no_interrupt() -> None:
    assert interrupt_from(None, hi_stopped(), status="FINISHED") is None
    assert interrupt_from({}, [], status="STOPPED") is None


def test_run_status_follows_flowise() -> None:
    assert run_status(hi_stopped()) == "STOPPED"
    assert run_status([START]) == "FINISHED"
    assert run_status([*hi_stopped(), {"status": "ERROR"}]) == "ERROR"
    assert run_status([{"status": "ERROR"}, {"status": "TERMINATED"}]) == "TERMINATED"
    assert run_status([]) is None
    assert run_status("nope") is None


def resumed(node_id: str, node_input: dict[str, Any]) -> dict[str, Any]:
    return {"nodeId": node_id, "status": "FINISHED", "data": {"id": node_id, "input": node_input, "output": {}}}


def test_resumed_node_is_flowises_marker() -> None:
    agent = resumed("agentAgentflow_0", {"humanInput": {"type": "proceed", "startNodeId": "agentAgentflow_0"}})
    hi = resumed("humanInputAgentflow_0", {"type": "reject", "startNodeId": "humanInputAgentflow_0", "messages": []})
    hi_later = resumed("humanInputAgentflow_1", {"type": "proceed", "startNodeId": "humanInputAgentflow_1"})
    assert resumed_node([START, agent]) == "agentAgentflow_0"
    assert resumed_node([START, hi, {"nodeId": "llmAgentflow_2", "data": {}}]) == "humanInputAgentflow_0"
    # a second resume replays the first one's marked node first: the last marker is this run's
    assert resumed_node([START, hi, hi_later]) == "humanInputAgentflow_1"
    assert resumed_node(hi_stopped()) is None
    assert resumed_node([resumed("x", {"type": "proceed", "startNodeId": "y"})]) is None
    assert resumed_node([resumed("x", {"humanInput": {"type": "maybe", "startNodeId": "x"}})]) is None
    assert resumed_node(None) is None


def test_repr_leaves_the_raw_payloads_out() -> None:
    interrupt = interrupt_from(AGENT_ACTION, agent_stopped())
    assert interrupt is not None
    assert "You have a calculator." not in repr(interrupt)
    assert "Careful Calculator" in repr(interrupt)


def test_label_falls_back_to_flowises_defaults() -> None:
    assert Interrupt(kind="human_input").label(True) == "Proceed"
    assert Interrupt(kind="human_input").label(False) == "Reject"


# ----------------------------------------------------------------------------------------------- properties

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(
    [
        "id",
        "data",
        "mapping",
        "elements",
        "type",
        "label",
        "nodeId",
        "nodeLabel",
        "input",
        "output",
        "status",
        "messages",
        "calledTools",
        "tool_calls",
        "toolCalls",
        "humanInputAction",
        "agentTools",
        "availableTools",
        "content",
        "name",
    ]
)
SHAPED = st.recursive(
    st.none() | st.integers() | st.sampled_from(["STOPPED", "agentAgentflow_0", "approve-button", "assistant", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=3), inner, max_size=6),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(action=JSON | SHAPED, executed=JSON | SHAPED, status=st.none() | st.sampled_from(["STOPPED", "FINISHED", "x"]))
@example(action=None, executed=[{"status": []}], status=None)
def test_never_raises_on_odd_payloads(action: Any, executed: Any, status: str | None) -> None:
    interrupt = interrupt_from(action, executed, status=status, text="t")
    run_status(executed)
    resumed_node(executed)
    if interrupt is not None:
        assert [d.value for d in interrupt.decisions] == ["proceed", "reject"]
        body = interrupt.resume_fields(approve=True, feedback="f")
        assert body["question"]
        json.dumps(body)  # always sendable


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_every_real_shaped_stop_survives_missing_parts(data: st.DataObject) -> None:
    """Drop any subset of keys from a real stop: still an Interrupt (or None), never an exception."""
    executed = copy.deepcopy(data.draw(st.sampled_from([hi_stopped(), agent_stopped()])))
    node = executed[-1]
    for container in (node, node["data"], node["data"]["output"], node["data"]["input"]):
        for key in list(container):
            if data.draw(st.booleans()):
                container[key] = data.draw(JSON)
    interrupt_from(data.draw(st.none() | st.just(HI_ACTION) | st.just(AGENT_ACTION)), executed)
