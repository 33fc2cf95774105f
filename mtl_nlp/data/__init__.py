"""Data: readers for formats ``datasets`` does not read itself, loading of task splits, collation, sampling."""
