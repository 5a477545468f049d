"""Helpers shared by the test suite and the bench/ scripts (not tests themselves)."""
