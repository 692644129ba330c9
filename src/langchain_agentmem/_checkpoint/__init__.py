"""LangGraph checkpointer internals: chunked channel values, the value codec and memo, and
the DeltaChannel walk."""
