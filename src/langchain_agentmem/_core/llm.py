"""Structured answers from any LangChain chat model.

:func:`structured` returns a runnable that turns a list of messages into an instance of a
pydantic model. Models that implement ``with_structured_output`` use it (langchain-openai
defaults to ``method="json_schema"``: the answer is JSON text constrained by the schema);
others (LangChain's fake chat models, plain LLMs) are asked for JSON in the prompt, which
every prompt of this package already describes, and their text is parsed.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel

__all__ = ["structured", "parse_json", "text_of"]

M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def text_of(output: Any) -> str:
    """The text of a model output (a message or a string)."""
    if isinstance(output, BaseMessage):
        return output.text
    return str(output)


def parse_json(schema: type[M], output: Any) -> M:
    """Parse a model's text answer into ``schema``; ``ValueError`` naming what came back."""
    if isinstance(output, schema):
        return output
    if isinstance(output, dict):
        return schema.model_validate(output)
    text = _FENCE.sub("", text_of(output).strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError(
            f"expected a JSON object for {schema.__name__} from the model, got {text[:200]!r}"
        )
    try:
        return schema.model_validate(json.loads(text[start : end + 1]))
    except ValueError as exc:
        raise ValueError(
            f"model answer does not match {schema.__name__}: {exc}; answer was {text[:200]!r}"
        ) from exc


def structured(
    llm: BaseLanguageModel[Any] | Runnable[Any, Any], schema: type[M]
) -> Runnable[list[BaseMessage], M]:
    """A runnable from messages to a ``schema`` instance, one model call per invocation."""
    if not isinstance(llm, (BaseLanguageModel, Runnable)):
        raise TypeError(f"expected a LangChain chat model, got {type(llm).__name__}")
    with_so = getattr(llm, "with_structured_output", None)
    if with_so is not None:
        try:
            return with_so(schema) | RunnableLambda(lambda out: parse_json(schema, out))
        except NotImplementedError:
            pass
    return llm | RunnableLambda(lambda out: parse_json(schema, out))
