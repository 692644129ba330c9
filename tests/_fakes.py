"""A scripted chat model for unit tests of LLM-driven memories: it answers from a list (or
a function of the prompt), records every call, and fails loudly on an unexpected call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


class ScriptedChatModel(BaseChatModel):
    """``responses``: strings answered in order, or one function ``prompt_text -> str``."""

    responses: list[str] | Callable[[str], str] = Field(default_factory=list)
    calls: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-test-model"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.calls.append(list(messages))
        if callable(self.responses):
            text = self.responses("\n".join(m.text for m in messages))
        else:
            if not self.responses:
                raise AssertionError(
                    f"unexpected model call #{len(self.calls)}: {messages[-1].text[:200]!r}"
                )
            text = self.responses.pop(0)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    def prompt(self, i: int = -1) -> str:
        """The text of call ``i``."""
        return "\n".join(m.text for m in self.calls[i])
