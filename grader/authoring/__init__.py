"""Authoring: what instructors and students get, generated from an assignment's reference."""
