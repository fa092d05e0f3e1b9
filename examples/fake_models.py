"""Scripted models for the framework tests: real frameworks, no network.

`ScriptedChat` is langchain_core's `GenericFakeChatModel` that accepts `bind_tools`
(agents bind their tools; the script already says which to call). `ScriptedModel` is an
Agents SDK `Model` that calls the tool it is told to, then answers with the tool's output,
so the final answer shows what the model saw (the tool result, a rejection, an expiry).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage


class ScriptedChat(GenericFakeChatModel):
    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChat:  # type: ignore[override]
        return self


def chat(*replies: AIMessage) -> ScriptedChat:
    return ScriptedChat(messages=iter(replies))


def tool_calls(*calls: tuple[str, dict[str, Any]]) -> AIMessage:
    return AIMessage(
        content="", tool_calls=[{"name": n, "args": a, "id": f"call_{i}"} for i, (n, a) in enumerate(calls)]
    )


def scripted_model(calls: Sequence[tuple[str, dict[str, Any]]]) -> Any:
    """An Agents SDK model: first turn calls `calls`, later turns echo the tool outputs."""
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from agents.usage import Usage
    from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

    counter = itertools.count()

    class ScriptedModel(Model):
        async def get_response(self, system_instructions, input, *args: Any, **kwargs: Any) -> ModelResponse:
            items = input if isinstance(input, list) else []
            outputs = [i for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"]
            if outputs:
                text = " | ".join(str(o.get("output")) for o in outputs)
                msg = ResponseOutputMessage(
                    id=f"msg_{next(counter)}", type="message", role="assistant", status="completed",
                    content=[ResponseOutputText(type="output_text", text=f"final: {text}", annotations=[])],
                )
                return ModelResponse(output=[msg], usage=Usage(), response_id=None)
            out = [
                ResponseFunctionToolCall(
                    id=f"fc_{n}", call_id=f"call_{n}", type="function_call", name=name,
                    arguments=json.dumps(args), status="completed",
                )
                for n, (name, args) in enumerate(calls)
            ]
            return ModelResponse(output=out, usage=Usage(), response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            raise NotImplementedError("the tests do not stream")

    return ScriptedModel()


def pydantic_ai_model(calls: Sequence[tuple[str, dict[str, Any]]]) -> Any:
    """A pydantic-ai `FunctionModel`: the first turn calls `calls`; once tool results (or
    denials) are back, it answers ``final: <what the tools returned>``."""
    from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def respond(messages: list[Any], info: AgentInfo) -> ModelResponse:
        last = messages[-1]
        parts = last.parts if isinstance(last, ModelRequest) else []
        returns = [p for p in parts if isinstance(p, ToolReturnPart)]
        if returns:
            return ModelResponse(parts=[TextPart("final: " + " | ".join(str(p.content) for p in returns))])
        return ModelResponse(parts=[
            ToolCallPart(name, dict(args), tool_call_id=f"call_{n}") for n, (name, args) in enumerate(calls)
        ])

    return FunctionModel(respond)


def adk_model(calls: Sequence[tuple[str, dict[str, Any]]]) -> Any:
    """A Google ADK model, ADK's own `MockModel` (google.adk.cli.agent_test_runner) scripted:
    the first turn calls `calls`; once tool responses are back, it answers
    ``final: <what the tools returned>``."""
    from google.adk.cli.agent_test_runner import MockModel
    from google.adk.models.llm_response import LlmResponse
    from google.genai import types

    class ScriptedAdkModel(MockModel):
        async def generate_content_async(self, llm_request: Any, stream: bool = False) -> AsyncIterator[Any]:
            last = llm_request.contents[-1] if llm_request.contents else None
            answers = [p.function_response for p in (last.parts or []) if p.function_response] if last else []
            if answers:
                text = " | ".join(str(a.response.get("result", a.response.get("error"))) for a in answers)
                reply = types.Content(role="model", parts=[types.Part(text=f"final: {text}")])
                yield LlmResponse(content=reply)
                return
            parts = [
                types.Part(function_call=types.FunctionCall(name=name, args=dict(args), id=f"call_{n}"))
                for n, (name, args) in enumerate(calls)
            ]
            yield LlmResponse(content=types.Content(role="model", parts=parts))

    return ScriptedAdkModel()
