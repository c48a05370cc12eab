"""pytest reads this file first: selfcheck.py's hooks report each failure message first.

`grader release` wrote both files from the assignment; do not edit them.
"""
import selfcheck
from selfcheck import *  # noqa: F403 - the hooks (a conftest's own, so they work wherever pytest starts)

selfcheck.STUDENT_FILES = ('layers.py', 'two_layer_net.py', 'buy_apple_orange.py')
