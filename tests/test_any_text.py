"""Property tests: any Python string survives as a key and as content, on both backends."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.messages import HumanMessage

from langchain_agentmem import ChatMessageHistory, DocumentStore, Engine
from langchain_agentmem._encoding.json import dumps, loads
from langchain_agentmem._encoding.keys import decode_key, encode_key

# Every code point, surrogates and NUL included.
any_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)


@given(any_text, any_text)
def test_key_encoding_is_injective_and_keeps_prefixes(a: str, b: str) -> None:
    assert decode_key(encode_key(a)) == a
    assert (encode_key(a) == encode_key(b)) == (a == b)
    assert encode_key(a + b).startswith(encode_key(a))
    assert "\x00" not in encode_key(a)
    encode_key(a).encode("utf-8")  # storable as UTF-8 text


@given(any_text)
def test_json_round_trips_any_text(text: str) -> None:
    stored = dumps({"t": text})
    assert "\x00" not in stored
    stored.encode("utf-8")
    assert loads(stored) == {"t": text}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(session_id=any_text, content=any_text, key=any_text)
def test_any_text_round_trips_through_the_database(
    engine: Engine, session_id: str, content: str, key: str
) -> None:
    history = ChatMessageHistory(engine, session_id, user_id=key)
    history.clear()
    history.add_messages([HumanMessage(content)])
    assert [m.content for m in history.messages] == [content]
    docs = DocumentStore(engine, session_id, user_id=key)
    docs.mset([(key, Document(content, metadata={key: content}))])
    assert docs.mget([key]) == [Document(content, metadata={key: content})]
    assert key in list(docs.yield_keys(prefix=key))
