"""The only files mounted into the sandbox: the worker and its wire format.

They import nothing but the standard library and numpy, because the grader package
is deliberately absent inside the sandbox.
"""
