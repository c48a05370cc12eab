"""Autograder for the backpropagation chapter of *Deep Learning from Scratch*.

The pipeline, one module per stage: ``submission`` (find and read a student's files)
-> ``worker`` (run them in a sandboxed process) -> ``checks`` (compare with the
reference and with numerical gradients) -> ``scoring`` -> ``reports``. Exercise
content lives in ``grader.exercises``; the CLI in ``grader.cli`` only wires it up.
"""

import os

# The grader's arrays are small and its workers need the cores: BLAS threads would only
# spin against them (measured: a 3x784 @ 784x50 dot went from 20 us to 1.6 ms). Set
# before numpy is first imported, which the package's modules do.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def keep_freed_memory() -> None:
    """Keep freed memory in the heap for reuse instead of returning it to the kernel.

    glibc gives each freed block above 128 KiB (a 784x50 float64 array is 307 KiB)
    back with munmap, so the next one costs a fresh page fault per 4 KiB; on this kind
    of VM that was a third of a TwoLayerNet check. Glibc reads its MALLOC_* variables
    only at start-up (and never in a setuid-like sandbox process), hence mallopt.
    Called by the processes that grade a class (``grader.batch``), not on import: a
    Jupyter kernel importing ``grader.nb`` keeps its own allocator settings.
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 64 << 20)   # M_MMAP_THRESHOLD: blocks up to 64 MiB come from the heap
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep up to 256 MiB of free heap
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


__version__ = "0.1.0"
