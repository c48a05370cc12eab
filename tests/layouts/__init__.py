"""Builders for the install layouts a course uses (tests/test_layouts.py)."""
