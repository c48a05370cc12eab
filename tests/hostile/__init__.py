"""Hostile hand-ins for tests/test_hostile.py and benchmarks/hostile_class.py (see attacks.py)."""
