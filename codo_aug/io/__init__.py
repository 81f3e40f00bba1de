"""General I/O, shared by every job and reader: where files live (a local folder or an object-storage
prefix), atomic writes, the JSON codo writes, and what identifies a place or a source."""
