"""Attestations: in-toto statements about datasets, builds and evaluations."""
