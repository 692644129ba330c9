"""A small OpenAI-compatible HTTP server for recording test cassettes.

No machine here reaches OpenAI, so cassettes in ``tests/cassettes/`` are recorded against
this server, which answers ``POST /v1/chat/completions`` and ``POST /v1/embeddings`` in
the format OpenAI documents (including ``encoding_format: base64`` embeddings, which the
``openai`` client asks for by default). With a real key the same tests re-record against
OpenAI (see ``tests/cassettes/README.md``).

* Embeddings are deterministic: each word is hashed into one of ``dimensions`` buckets
  (default 1536), then the vector is L2-normalized. Texts sharing words are similar.
* Chat replies come from a ``responder(request_json) -> dict`` the test supplies; it returns
  ``{"content": str}`` or ``{"tool_calls": [{"name": ..., "arguments": {...}}]}``. The
  default responder answers ``"ok"``.

Example:
    >>> with OpenAICompatServer() as server:
    ...     server.base_url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], dict[str, Any]]

_WORD = re.compile(r"\w+", re.UNICODE)


def hash_embedding(text: str, dimensions: int = 1536) -> list[float]:
    """The deterministic embedding this server returns for ``text``."""
    vec = [0.0] * dimensions
    for word in _WORD.findall(text.lower()) or [text]:
        digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dimensions
        sign = 1.0 if digest[4] & 1 else -1.0
        vec[bucket] += sign
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def _default_responder(request: dict[str, Any]) -> dict[str, Any]:
    return {"content": "ok"}


class OpenAICompatServer:
    """Run the server on 127.0.0.1 on a free port, in a thread. Use as a context manager."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder = responder or _default_responder
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> OpenAICompatServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append((self.path, body))
                if self.path.endswith("/embeddings"):
                    payload = server._embeddings(body)
                elif self.path.endswith("/chat/completions"):
                    payload = server._chat(body)
                else:
                    self._send(
                        404,
                        {
                            "error": {
                                "message": f"unknown path {self.path}",
                                "type": "invalid_request_error",
                            }
                        },
                    )
                    return
                self._send(200, payload)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- endpoints -------------------------------------------------------------------
    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input")
        if isinstance(inputs, str) or (
            isinstance(inputs, list) and inputs and isinstance(inputs[0], int)
        ):
            inputs = [inputs]
        dims = int(body.get("dimensions") or 1536)
        data = []
        for i, item in enumerate(inputs or []):
            text = item if isinstance(item, str) else " ".join(f"t{t}" for t in item)
            vec = hash_embedding(text, dims)
            if body.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
            else:
                encoded = vec
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(len(_WORD.findall(t)) if isinstance(t, str) else len(t) for t in inputs or [])
        return {
            "object": "list",
            "data": data,
            "model": body.get("model", "text-embedding-3-small"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        reply = self.responder(body)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.get("content"),
            "refusal": None,
        }
        finish = "stop"
        if reply.get("tool_calls"):
            message["tool_calls"] = [
                {
                    "id": call.get("id") or "call_" + uuid.uuid4().hex[:24],
                    "type": "function",
                    "function": {
                        "name": call["name"],
                        "arguments": json.dumps(call.get("arguments", {})),
                    },
                }
                for call in reply["tool_calls"]
            ]
            finish = "tool_calls"
        prompt = sum(
            len(_WORD.findall(str(m.get("content") or ""))) for m in body.get("messages", [])
        )
        completion = len(_WORD.findall(str(reply.get("content") or "")))
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "gpt-4o-mini"),
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
            "system_fingerprint": "agentmem-test-server",
        }
