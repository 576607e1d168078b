"""The SQL backends' shared parts: portable statements, the row codec, schema versions, and SQLite itself."""
