"""Search: the metadata filter compiler (any JSON column) and, later, the vector index and
rank fusion shared by every memory that searches."""
