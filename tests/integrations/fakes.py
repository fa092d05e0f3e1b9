"""The scripted models the examples use, shared with the tests (examples/fake_models.py)."""

from examples.fake_models import ScriptedChat, adk_model, chat, pydantic_ai_model, scripted_model, tool_calls

__all__ = ["ScriptedChat", "adk_model", "chat", "pydantic_ai_model", "scripted_model", "tool_calls"]
