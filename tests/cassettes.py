"""Replaying (and re-recording) OpenAI calls with vcrpy.

``openai_cassette(name, responder)`` yields the keyword arguments to build a
langchain-openai client (``base_url``, ``api_key``) inside a vcrpy cassette
``tests/cassettes/<name>.yaml``. How it behaves depends on ``AGENTMEM_RECORD``:

* unset (the normal test run): replay only (``record_mode="none"``); a request that is
  not in the cassette fails the test. No network is used.
* ``local``: start :class:`OpenAICompatServer` on 127.0.0.1 and record against it.
* ``openai``: record against api.openai.com with ``OPENAI_API_KEY``.

Requests match on method, path and JSON body, so a cassette recorded against the local
server replays against the default OpenAI URL. Authorization headers and keys are scrubbed
before anything is written.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import vcr

from openai_compat_server import OpenAICompatServer, Responder

CASSETTES = Path(__file__).parent / "cassettes"
SCRUBBED_KEY = "sk-scrubbed"


def _body_json(r1: Any, r2: Any) -> None:
    def norm(body: Any) -> Any:
        if not body:
            return None
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        try:
            return json.loads(body)
        except ValueError:
            return body

    assert norm(r1.body) == norm(r2.body), "request bodies differ"


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in {"set-cookie", "openai-organization", "openai-project"}:
            headers.pop(name)
    return response


def _vcr(mode: str) -> vcr.VCR:
    return vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode=mode,
        match_on=["method", "path", "json_body"],
        filter_headers=[
            "authorization",
            "api-key",
            "openai-organization",
            "openai-project",
            "cookie",
        ],
        before_record_response=_scrub_response,
        decode_compressed_response=True,
    )


@contextlib.contextmanager
def openai_cassette(name: str, responder: Responder | None = None) -> Iterator[dict[str, Any]]:
    """Yield ``{"base_url": ..., "api_key": ...}`` for ``ChatOpenAI`` / ``OpenAIEmbeddings``."""
    mode = os.environ.get("AGENTMEM_RECORD", "")
    if mode == "local":
        with OpenAICompatServer(responder) as server:
            recorder = _vcr("all")
            recorder.register_matcher("json_body", _body_json)
            with recorder.use_cassette(f"{name}.yaml"):
                yield {"base_url": server.base_url, "api_key": SCRUBBED_KEY}
        return
    if mode == "openai":
        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise RuntimeError("AGENTMEM_RECORD=openai needs OPENAI_API_KEY")
        recorder = _vcr("all")
        recorder.register_matcher("json_body", _body_json)
        with recorder.use_cassette(f"{name}.yaml"):
            yield {"base_url": "https://api.openai.com/v1", "api_key": key}
        return
    if not (CASSETTES / f"{name}.yaml").exists():
        raise FileNotFoundError(
            f"cassette {name}.yaml missing: record it with AGENTMEM_RECORD=local (see tests/cassettes/README.md)"
        )
    recorder = _vcr("none")
    recorder.register_matcher("json_body", _body_json)
    with recorder.use_cassette(f"{name}.yaml"):
        yield {"base_url": "https://api.openai.com/v1", "api_key": SCRUBBED_KEY}
