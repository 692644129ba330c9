"""MemoryVectorStore with OpenAI embeddings through langchain-openai, the real client
path, replayed from a vcrpy cassette (recorded against tests/openai_compat_server.py; see
tests/cassettes/README.md)."""

from __future__ import annotations

import pytest
from cassettes import openai_cassette
from langchain_openai import OpenAIEmbeddings

from langchain_agentmem import Engine, MemoryVectorStore

MEMORIES = [
    "Alice prefers green tea in the morning",
    "Alice's daughter is called Maya",
    "Alice works as a marine biologist",
]


def _embeddings(kw: dict[str, str]) -> OpenAIEmbeddings:
    # tiktoken cannot download its files here: send text, not token ids.
    return OpenAIEmbeddings(model="text-embedding-3-small", dimensions=256, check_embedding_ctx_length=False, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_openai_embeddings_cassette(engine: Engine) -> None:
    with openai_cassette("vectorstore_openai_embeddings") as kw:
        store = MemoryVectorStore(engine, _embeddings(kw), collection="openai", user_id="alice", model="text-embedding-3-small")
        store.add_texts(MEMORIES, [{"n": i} for i in range(3)], ids=["tea", "maya", "job"])
        found = store.similarity_search("what does alice drink tea", k=1)
    assert [d.id for d in found] == ["tea"]
    with engine.transaction(readonly=True) as tx:
        assert tx.fetchone("SELECT dims, model FROM {vector_collections} WHERE name = 'openai'") == (256, "text-embedding-3-small")


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_openai_embeddings_cassette_async(aengine: Engine) -> None:
    with openai_cassette("vectorstore_openai_embeddings_async") as kw:
        store = MemoryVectorStore(aengine, _embeddings(kw), collection="openai", user_id="alice")
        await store.aadd_texts(MEMORIES, ids=["tea", "maya", "job"])
        found = await store.asimilarity_search("who is maya", k=1)
    assert [d.id for d in found] == ["maya"]
