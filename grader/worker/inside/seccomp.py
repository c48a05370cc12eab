"""A seccomp filter for a student's process: the system calls no exercise needs and an
escape would.

bubblewrap and the rlimits decide what the process can see and how much it can use;
the kernel's own attack surface stays open unless the calls are refused. Refused
(EPERM) for every process of a submission, children included (a filter is inherited
and cannot be removed):

- new namespaces: ``unshare``, ``setns``, ``clone`` with a CLONE_NEW* flag (run as root,
  a new user namespace would give the student every capability inside it); ``clone3``
  says ENOSYS, so the C library falls back to ``clone``, whose flags can be checked;
- io_uring, userfaultfd, perf_event_open, bpf: kernel interfaces behind many escalations;
- the kernel keyrings (``keyctl``, ``add_key``, ``request_key``): keys outlive the process
  and would pass data to the next student of the same uid;
- another process's memory: ``ptrace``, ``process_vm_readv``/``writev``, ``pidfd_getfd``;
- mounts, modules, kexec, swap, reboot, accounting, quotas, ``syslog``, file handles.

Written as classic BPF by hand (the sandbox has the standard library and numpy only):
the architecture is checked first (a 32-bit or x32 call would use other numbers, so it
is refused too). Only x86_64 and aarch64 are known; elsewhere ``program()`` says why
there is no filter. Imports: stdlib only (this file runs inside the sandbox).
"""
import ctypes
import errno
import os
import platform
import struct

# system call numbers: x86_64 (asm/unistd_64.h), aarch64 (asm-generic/unistd.h)
# libc, its functions looked up once, here: in the zygote, before any fork (a CDLL made per
# student process, and each function found in it again, cost ~0.6 ms of every student's start)
LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.prctl.restype = ctypes.c_int

CALLS = {
    "unshare": (272, 97), "setns": (308, 268), "clone": (56, 220), "clone3": (435, 435),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "userfaultfd": (323, 282), "perf_event_open": (298, 241), "bpf": (321, 280),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "pidfd_getfd": (438, 438),
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51),
    "fsopen": (430, 430), "fsconfig": (431, 431), "fsmount": (432, 432), "fspick": (433, 433),
    "move_mount": (429, 429), "open_tree": (428, 428), "mount_setattr": (442, 442),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264), "fanotify_init": (300, 262),
    "init_module": (175, 105), "finit_module": (313, 273), "delete_module": (176, 106),
    "kexec_load": (246, 104), "kexec_file_load": (320, 294), "reboot": (169, 142),
    "swapon": (167, 224), "swapoff": (168, 225), "acct": (163, 89), "quotactl": (179, 60),
    "syslog": (103, 116), "vhangup": (153, 58),
}
DENIED = tuple(name for name in CALLS if name not in ("clone", "clone3"))
ARCHES = {"x86_64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7)}  # column in CALLS, AUDIT_ARCH_*
CLONE_NEW = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
X32_BIT = 0x40000000

_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL_PROCESS, _ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_NR, _ARCH, _ARG0 = 0, 4, 16          # offsets in struct seccomp_data
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2

SUMMARY = ("new namespaces (unshare, setns, clone with CLONE_NEW*), io_uring, userfaultfd, "
           "perf_event_open, bpf, keyrings (keyctl, add_key, request_key), ptrace and other processes' "
           "memory, mounts, kernel modules, kexec, reboot, swap, syslog; other architectures' calls")


def number(name: str, machine: str | None = None) -> int | None:
    """The system call's number on this architecture (None where it is not known)."""
    arch = ARCHES.get(machine or platform.machine())
    return CALLS[name][arch[0]] if arch else None


class Filter(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def program(machine: str | None = None) -> bytes:
    """The filter for this machine's architecture, as ``struct sock_filter`` bytes;
    OSError when the architecture is not one whose numbers are known."""
    machine = machine or platform.machine()
    if machine not in ARCHES:
        raise OSError(errno.ENOSYS, f"no seccomp filter for the {machine} architecture")
    column, arch = ARCHES[machine]
    code: list[tuple] = [(_LD_W_ABS, 0, 0, _ARCH), (_JEQ, 1, 0, arch), ("ret", _KILL_PROCESS),
                         (_LD_W_ABS, 0, 0, _NR)]
    if machine == "x86_64":
        code.append((_JGE, "deny", 0, X32_BIT))
    code += [(_JEQ, "deny", 0, CALLS[name][column]) for name in DENIED]
    code += [(_JEQ, "enosys", 0, CALLS["clone3"][column]), (_JEQ, 0, "allow", CALLS["clone"][column]),
             (_LD_W_ABS, 0, 0, _ARG0), (_JSET, "deny", "allow", CLONE_NEW)]
    labels = {"allow": len(code), "deny": len(code) + 1, "enosys": len(code) + 2}
    code += [("ret", _ALLOW), ("ret", _ERRNO | errno.EPERM), ("ret", _ERRNO | errno.ENOSYS)]
    out = []
    for i, insn in enumerate(code):
        if insn[0] == "ret":
            out.append(struct.pack("=HBBI", _RET, 0, 0, insn[1]))
            continue
        op, jt, jf, k = insn
        jt = labels[jt] - i - 1 if isinstance(jt, str) else jt
        jf = labels[jf] - i - 1 if isinstance(jf, str) else jf
        out.append(struct.pack("=HBBI", op, jt, jf, k))
    return b"".join(out)


def install(code: bytes) -> None:
    """Load the filter into this process (and everything it starts), for good."""
    buffer = ctypes.create_string_buffer(code, len(code))
    prog = Filter(len(code) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"the seccomp filter could not be loaded: {os.strerror(error)}")


def probe(code: bytes, machine: str | None = None) -> str | None:
    """None if, in a throwaway child with the filter loaded, the denied calls fail with
    EPERM and a plain fork still works; else what went wrong."""
    column = ARCHES[machine or platform.machine()][0]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        said = b""
        try:
            install(code)
            libc = ctypes.CDLL(None, use_errno=True)
            for name, args in (("unshare", (0x10000000,)), ("keyctl", (0, -4, 0)), ("io_uring_setup", (1, 0)),
                               ("userfaultfd", (0,)), ("bpf", (0, 0, 0)), ("perf_event_open", (0, 0, -1, -1, 0))):
                ctypes.set_errno(0)
                if libc.syscall(CALLS[name][column], *args) != -1 or ctypes.get_errno() != errno.EPERM:
                    said += f"{name} was not refused; ".encode()
            child = os.fork()
            if child == 0:
                os._exit(0)
            if os.waitpid(child, 0)[1] != 0:
                said += b"a plain fork failed; "
        except BaseException as exc:  # noqa: B036 - reported to the zygote, never raised
            said += f"{type(exc).__name__}: {exc}".encode()
        os.write(write, said[:500] or b"ok")
        os._exit(0)
    os.close(write)
    said = os.read(read, 1000).decode(errors="replace")
    os.close(read)
    os.waitpid(pid, 0)
    return None if said == "ok" else said.rstrip("; ") or "the probe process died"
