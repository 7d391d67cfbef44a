//! End-to-end scenarios live in `tests/`, one story per file.
