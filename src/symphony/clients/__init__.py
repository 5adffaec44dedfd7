"""Thin clients of the daemon: the Python client library and the `symphony` command line."""

__all__: list[str] = []
