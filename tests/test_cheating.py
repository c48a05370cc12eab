"""Cheating gains nothing: every hand-in here has the same wrong Affine db plus an attack.

The baseline is that wrong code without any attack; an attack "gains nothing" when
no part scores more than the baseline's. Scores are computed in the grader's
process from plain arrays, so patching numpy or pytest in the worker, lying
``__eq__`` methods, ndarray subclasses and forged pickle payloads cannot move them.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import part_scores, write_submission

pytestmark = pytest.mark.sandbox

RESHAPE = "        dx = dx.reshape(*self.original_x_shape)\n"
WRONG_DB = ("layers.py", "self.db = np.sum(dout, axis=0)", "self.db = np.zeros_like(self.b)")

ATTACKS = {
    "numpy comparators patched at import": [WRONG_DB, ("layers.py", "import numpy as np\n", '''import numpy as np
np.allclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.isclose = lambda a, b, **k: np.ones(np.shape(a), dtype=bool)
np.testing.assert_allclose = lambda *a, **k: None
np.max = lambda *a, **k: 0.0
np.abs = lambda x, *a, **k: x * 0
''')],
    "pytest patched": [WRONG_DB, ("layers.py", "import numpy as np\n", '''import numpy as np
try:
    import pytest
    pytest.approx = lambda *a, **k: type("A", (), {"__eq__": lambda s, o: True})()
except Exception:
    pass
''')],
    "ndarray subclass with a lying __eq__": [("layers.py", "self.db = np.sum(dout, axis=0)",
                                              '''class Liar(np.ndarray):
            def __eq__(self, other):
                return True

            def __ne__(self, other):
                return False

        self.db = np.zeros_like(self.b).view(Liar)''')],
    "object with a lying __eq__": [("layers.py", "self.db = np.sum(dout, axis=0)", '''class Anything:
            def __eq__(self, other):
                return True

            def __array__(self, *a, **k):
                return np.zeros(1)

        self.db = Anything()''')],
    "forged reply with a pickle payload": [WRONG_DB, ("layers.py", RESHAPE, RESHAPE + '''
        import io, json, os, pickle, struct
        class Boom:
            def __reduce__(self):
                return (os.system, ("touch /tmp/grader-pwned-by-pickle",))
        buf = io.BytesIO()
        np.save(buf, np.array([Boom()], dtype=object), allow_pickle=True)
        frame = buf.getvalue()
        header = json.dumps({"ok": True, "results": [{"t": "nd", "i": 0}], "trace": [],
                             "frames": [len(frame)]}).encode()
        for fd in range(3, 64):
            try:
                os.write(fd, struct.pack(">I", len(header)) + header + frame)
            except OSError:
                pass
''')],
}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, grading):
    from grader.intake import Submission
    from grader.sandbox import WORKER_UID

    folder = write_submission(tmp_path_factory.mktemp("baseline") / "baseline", [WRONG_DB])
    staging = tmp_path_factory.mktemp("staging")
    staging.chmod(0o755)
    return part_scores(grading.grade(Submission("baseline", folder), staging, WORKER_UID))


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_gains_nothing(attack, baseline, grade, tmp_path):
    real_allclose = np.allclose
    result = grade(write_submission(tmp_path / "cheater", ATTACKS[attack]))
    scores = part_scores(result)
    assert all(scores[part] <= baseline[part] for part in baseline), (scores, baseline)
    assert scores["Affine"] < 18
    db = [t for t in result.tests if t.name.startswith("Affine: db")]
    assert db and all(t.score == 0 for t in db)
    assert np.allclose is real_allclose  # the grader's own numpy is untouched


def test_pickle_payload_never_runs_in_the_grader(tmp_path, grade):
    from pathlib import Path

    marker = Path("/tmp/grader-pwned-by-pickle")
    marker.unlink(missing_ok=True)
    grade(write_submission(tmp_path / "cheater", ATTACKS["forged reply with a pickle payload"]))
    assert not marker.exists()
