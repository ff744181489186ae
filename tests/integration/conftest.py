"""Integration tests use the session fixtures of tests/conftest.py (real Bazel)."""
