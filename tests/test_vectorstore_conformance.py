"""langchain-tests' VectorStoreIntegrationTests on both backends, sync and async."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from langchain_agentmem import Engine, MemoryVectorStore


class TestMemoryVectorStoreConformance(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, engine: Engine) -> Iterator[VectorStore]:  # type: ignore[override]
        store = MemoryVectorStore(
            engine, self.get_embeddings(), collection="conformance", user_id="u1"
        )
        yield store
        store.delete(filter={})
