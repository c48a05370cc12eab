"""Hidden tests: an assignment's tests, collected and run by pytest with the grader's plugin."""
