"""DocumentStore and ByteStore: langchain-tests' suites on both backends, plus usage."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_tests.integration_tests import BaseStoreAsyncTests, BaseStoreSyncTests

from langchain_agentmem import ByteStore, DocumentStore, Engine


class TestDocumentStoreSync(BaseStoreSyncTests[Document]):
    @pytest.fixture
    def kv_store(self, engine: Engine) -> Iterator[DocumentStore]:
        yield DocumentStore(engine, "conformance-" + uuid.uuid4().hex)

    @pytest.fixture
    def three_values(self) -> tuple[Document, Document, Document]:
        return (
            Document("foo", metadata={"n": 1}),
            Document("bar \x00 😀", metadata={"nested": {"x": [1, 2]}}, id="bar-id"),
            Document("buzz", metadata={}),
        )


class TestDocumentStoreAsync(BaseStoreAsyncTests[Document]):
    @pytest.fixture
    async def kv_store(self, aengine: Engine) -> AsyncIterator[DocumentStore]:
        yield DocumentStore(aengine, "conformance-" + uuid.uuid4().hex)

    @pytest.fixture
    def three_values(self) -> tuple[Document, Document, Document]:
        return (Document("foo"), Document("bar", metadata={"k": "v"}), Document("buzz", id="z"))


class TestByteStoreSync(BaseStoreSyncTests[bytes]):
    @pytest.fixture
    def kv_store(self, engine: Engine) -> Iterator[ByteStore]:
        yield ByteStore(engine, "bytes-" + uuid.uuid4().hex)

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return b"foo", b"\x00\xff\x00", b""


class TestByteStoreAsync(BaseStoreAsyncTests[bytes]):
    @pytest.fixture
    async def kv_store(self, aengine: Engine) -> AsyncIterator[ByteStore]:
        yield ByteStore(aengine, "bytes-" + uuid.uuid4().hex)

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return b"foo", b"bar", b"buzz"


KEYS = [
    "50%_off",
    "50%x",
    "5000",
    "a_b",
    "axb",
    "back\\slash",
    "back\\\\double",
    "Case",
    "case",
    "nul\x00key",
    "nul",
]


def test_prefixes_match_literally(engine: Engine) -> None:
    store = ByteStore(engine, "prefixes")
    store.mset([(k, k.encode("utf-8")) for k in KEYS])
    assert sorted(store.yield_keys(prefix="50%")) == ["50%_off", "50%x"]
    assert list(store.yield_keys(prefix="50%_")) == ["50%_off"]
    assert list(store.yield_keys(prefix="a_")) == ["a_b"]
    assert list(store.yield_keys(prefix="back\\s")) == ["back\\slash"]
    assert list(store.yield_keys(prefix="back\\\\")) == ["back\\\\double"]
    assert list(store.yield_keys(prefix="C")) == ["Case"]
    assert list(store.yield_keys(prefix="nul\x00")) == ["nul\x00key"]
    assert sorted(store.yield_keys(prefix="nul")) == ["nul", "nul\x00key"]
    assert sorted(store.yield_keys()) == sorted(KEYS)
    assert store.mget(KEYS) == [k.encode("utf-8") for k in KEYS]


async def test_prefixes_match_literally_async(aengine: Engine) -> None:
    store = DocumentStore(aengine, "prefixes")
    await store.amset([(k, Document(k)) for k in KEYS])
    assert [k async for k in store.ayield_keys(prefix="50%_")] == ["50%_off"]
    assert [k async for k in store.ayield_keys(prefix="back\\\\")] == ["back\\\\double"]
    assert [d.page_content for d in await store.amget(["a_b", "axb"]) if d] == ["a_b", "axb"]


def test_users_and_namespaces_are_isolated(engine: Engine) -> None:
    alice = DocumentStore(engine, "notes", user_id="alice")
    bob = DocumentStore(engine, "notes", user_id="bob")
    alice_other = DocumentStore(engine, "other", user_id="alice")
    alice.mset([("k", Document("alice"))])
    bob.mset([("k", Document("bob"))])
    assert alice.mget(["k"]) == [Document("alice")]
    assert alice_other.mget(["k"]) == [None]
    bob.mdelete(["k"])
    assert bob.mget(["k"]) == [None]
    assert alice.mget(["k"]) == [Document("alice")]
    assert list(bob.yield_keys()) == []


def test_last_value_wins_within_one_mset(engine: Engine) -> None:
    store = ByteStore(engine)
    store.mset([("k", b"1"), ("k", b"2")])
    assert store.mget(["k"]) == [b"2"]


def test_bad_values_raise_and_lose_nothing(engine: Engine) -> None:
    docs = DocumentStore(engine)
    docs.mset([("keep", Document("kept"))])
    with pytest.raises(TypeError, match="must be Documents"):
        docs.mset([("new", Document("x")), ("bad", "not a document")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not JSON serializable"):
        docs.mset([("new", Document("x", metadata={"when": object()}))])
    with pytest.raises(TypeError, match="must be bytes"):
        ByteStore(engine).mset([("b", "text")])  # type: ignore[list-item]
    assert list(docs.yield_keys()) == ["keep"]


def test_a_huge_value(engine: Engine) -> None:
    store = ByteStore(engine)
    blob = bytes(range(256)) * 40_000  # 10 MB
    store.mset([("blob", blob)])
    assert store.mget(["blob"]) == [blob]


def test_parent_document_retriever_uses_it_as_docstore(engine: Engine) -> None:
    from langchain_classic.retrievers import ParentDocumentRetriever
    from langchain_text_splitters import CharacterTextSplitter

    docstore = DocumentStore(engine, "parents", user_id="alice")
    retriever = ParentDocumentRetriever(
        vectorstore=InMemoryVectorStore(DeterministicFakeEmbedding(size=16)),
        docstore=docstore,
        child_splitter=CharacterTextSplitter(separator=" ", chunk_size=20, chunk_overlap=0),
    )
    parents = [
        Document(
            "The cat sat on the mat and purred loudly all afternoon.", metadata={"src": "cats"}
        ),
        Document(
            "Postgres stores rows in heap pages and indexes them with btrees.",
            metadata={"src": "db"},
        ),
    ]
    retriever.add_documents(parents, ids=["cats", "db"])
    assert sorted(docstore.yield_keys()) == ["cats", "db"]
    found = retriever.invoke("cat sat on the mat")
    assert found and all(doc in parents for doc in found)
    assert docstore.mget(["db"])[0].page_content.startswith("Postgres")
