"""The judging core, pure: values in, verdicts out (compare, misconceptions, scoring)."""
