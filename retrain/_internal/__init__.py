"""Internals of retrain: not a public API, may change without notice."""
