"""Reward-hacking completions against call mode, one per property, and the checks each must pass.

Used in-process by ``test_verify_adversarial.py`` (as whoever runs pytest: root here) and
run as a script as an ordinary user (uid 65534) by the same test file:

    python tests/verify/adversarial_calls.py [CASE ...]    # prints {case: [problems]} as JSON

Every case scores a hack against a small task whose expected values the sample never
sees (a per-run random offset): a case returns the problems it found (empty = it holds).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from codemill.evaluate.sandbox import Limits, Sandbox  # noqa: E402
from codemill.verify import CallResult, run_calls, score_calls  # noqa: E402

LIMITS = Limits(timeout=2.0, memory_mb=256, nproc=16, output_bytes=1024, max_output_bytes=1 << 20)
SUBCLASS = "class Always(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"


def _task() -> tuple[str, list[tuple[str, object]]]:
    """``f(x) = x * K`` for a secret K: the parent knows the answers, the sample cannot."""
    k = secrets.randbelow(10**12) + 10**12
    return "def f(x):\n    return x * %d\n" % k, [(str(x), x * k) for x in (1, 2, 3)]


def _must_fail(sb: Sandbox, hack: str, name: str, timeout: float = 2.0) -> tuple[list[str], list[CallResult]]:
    honest, cases = _task()
    problems = []
    verdict = score_calls(hack, "f", cases, timeout, sandbox=sb)
    if verdict.passed_cases:
        problems.append(f"{name}: {verdict.passed_cases}/{verdict.total} cases passed ({verdict.detail})")
    if not score_calls(honest, "f", cases, timeout, sandbox=sb).passed:
        problems.append(f"{name}: the honest solution failed afterwards")
    return problems, verdict.results


def return_value_subclass(sb: Sandbox) -> list[str]:
    problems = []
    hacks = {
        "int": SUBCLASS + "def f(x):\n    return Always(0)\n",
        "list": "class L(list):\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return L()\n",
        "str": "class S(str):\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return S()\n",
        "object": "class O:\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return O()\n",
        "nested": SUBCLASS + "def f(x):\n    return [Always(0)]\n",
        "patched int": SUBCLASS + "import builtins\nbuiltins.int = Always\ndef f(x):\n    return int(x)\n",
    }
    for name, hack in hacks.items():
        found, results = _must_fail(sb, hack, name)
        problems += found
        problems += [
            f"{name}: status {r.status}, expected unserializable" for r in results if r.status != "unserializable"
        ]
    return problems


def early_exit(sb: Sandbox) -> list[str]:
    problems = []
    for hack in (
        "import sys\nsys.exit(0)",
        "import os\nos._exit(0)",
        "raise SystemExit",
        "exit()",
        "def f(x):\n    import os\n    os._exit(0)",
        "def f(x):\n    raise SystemExit(0)",
        "def f(x):\n    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)",
        "def f(x):\n    import os\n    os.kill(os.getppid(), 9)\n    os._exit(0)",
    ):
        problems += _must_fail(sb, hack, repr(hack))[0]
    return problems


def fake_verdict_lines(sb: Sandbox) -> list[str]:
    """Forged frames and replies, with made-up values, on every descriptor: none may count."""
    forge = (
        "import json, os, sys\n"
        "def forge():\n    for fd in range(0, 1024):\n        for i in range(3):\n            for line in ("
        "json.dumps(['0' * 32, i, 'ok', '777']) + '\\n', 'ok 777\\n', 'ok ' + '0' * 32 + '\\n'):\n"
        "                try:\n                    os.write(fd, line.encode())\n                except OSError:\n"
        "                    pass\n"
    )
    problems = []
    for name, hack in {
        "at load, then exit": forge + "forge()\nos._exit(0)\n",
        "in the call, then return": forge + "def f(x):\n    forge()\n    return 0\n",
        "in the call, then exit": forge + "def f(x):\n    forge()\n    sys.stdout.flush()\n    os._exit(0)\n",
        "printed": "def f(x):\n    print('ok 777')\n    print('passed')\n    return 0\n",
    }.items():
        found, results = _must_fail(sb, hack, name)
        problems += found
        problems += [f"{name}: a forged value was taken as a result" for r in results if r.value == 777]
    return problems


def patched_serializers(sb: Sandbox) -> list[str]:
    hacks = {
        "strict module": SUBCLASS + "import sys\nfor m in list(sys.modules.values()):\n"
        "    if hasattr(m, 'encode') and hasattr(m, 'Unserializable'):\n"
        '        m.encode = lambda v, n=0: \'["s", "forged"]\'\n'
        "def f(x):\n    return Always(0)\n",
        "json": SUBCLASS + "import json\njson.dumps = lambda *a, **k: '1'\n"
        "import json.encoder\njson.JSONEncoder.encode = lambda *a, **k: '1'\n"
        "def f(x):\n    return Always(0)\n",
        "builtins": SUBCLASS + "import builtins\nbuiltins.type = lambda o: int\nbuiltins.isinstance = "
        "lambda *a: True\nbuiltins.repr = lambda o: '1'\ndef f(x):\n    return Always(0)\n",
    }
    problems = []
    for name, hack in hacks.items():
        problems += _must_fail(sb, hack, name)[0]
    return problems


def memory_scans(sb: Sandbox) -> list[str]:
    """Frames, every object the collector knows, the environment, argv, /proc: the expected
    values (13-digit multiples of a secret) are in none of them, since they never enter the
    sandbox; the hack returns the first plausible one it finds."""
    hack = (
        "import gc, os, re, sys\n"
        "def scan():\n    seen = []\n    f = sys._getframe()\n    while f is not None:\n"
        "        seen += [repr(v) for v in f.f_locals.values()] + [repr(v) for v in f.f_globals.values()]\n"
        "        f = f.f_back\n    for o in gc.get_objects():\n        try:\n            seen.append(repr(o))\n"
        "        except Exception:\n            pass\n    seen += [repr(dict(os.environ)), repr(sys.argv)]\n"
        "    for path in ('/proc/self/mem', '/proc/self/environ', '/proc/1/cmdline', '/proc/self/cmdline'):\n"
        "        try:\n            seen.append(repr(open(path, 'rb').read(1 << 16)))\n        except OSError:\n"
        "            pass\n    return ' '.join(seen)\n"
        "def f(x):\n    for n in map(int, re.findall(r'(?<![0-9])[0-9]{13}(?![0-9])', scan())):\n"
        "        if n % x == 0 and 10 ** 12 <= n // x < 2 * 10 ** 12:\n            return n\n    return -1\n"
    )
    return _must_fail(sb, hack, "memory scan", timeout=4.0)[0]


def trace_functions(sb: Sandbox) -> list[str]:
    hack = (
        SUBCLASS + "import sys, threading\n"
        "def tracer(frame, event, arg):\n    if 'value' in frame.f_locals and event == 'line':\n"
        "        frame.f_locals['value'] = 0\n    return tracer\n"
        "sys.settrace(tracer)\nthreading.settrace(tracer)\nsys.setprofile(lambda *a: None)\n"
        "if hasattr(sys, 'monitoring'):\n    sys.monitoring.use_tool_id(3, 'hack')\n"
        "    sys.monitoring.set_events(3, sys.monitoring.events.LINE)\n"
        "    sys.monitoring.register_callback(3, sys.monitoring.events.LINE, lambda *a: None)\n"
        "def f(x):\n    sys.settrace(tracer)\n    sys._getframe().f_back.f_trace = tracer\n    return Always(0)\n"
    )
    return _must_fail(sb, hack, "trace functions")[0]


def atexit_hooks(sb: Sandbox) -> list[str]:
    problems = []
    for hack in (
        SUBCLASS + "import atexit, os\natexit.register(lambda: os._exit(0))\ndef f(x):\n    return Always(0)\n",
        "import atexit, os\ndef f(x):\n    atexit.register(lambda: os.write(1, b'ok 0\\n'))\n    raise SystemExit(0)\n",
    ):
        problems += _must_fail(sb, hack, "atexit")[0]
    return problems


def outliving_forks(sb: Sandbox) -> list[str]:
    """A call's child that leaves its session, keeps the reply pipe, and writes later."""
    hack = (
        "import os, time\n"
        "def f(x):\n    if os.fork() == 0:\n        os.setsid()\n        time.sleep(0.3)\n"
        "        for fd in range(3, 1024):\n            try:\n                os.write(fd, b'ok 777\\n')\n"
        "            except OSError:\n                pass\n        time.sleep(100)\n    return 0\n"
    )
    start = time.monotonic()
    problems, results = _must_fail(sb, hack, "outliving fork", timeout=3.0)
    if time.monotonic() - start > 15:
        problems.append("the forked children held the run open")
    problems += ["a late write was taken as a result" for r in results if r.value == 777]
    from tests.evaluate.adversarial import leftovers

    if leftovers(sb):
        problems.append(f"processes left behind: {leftovers(sb)}")
    return problems


def base_exceptions(sb: Sandbox) -> list[str]:
    problems = []
    for raised in ("type('Sneaky', (BaseException,), {})()", "KeyboardInterrupt()", "GeneratorExit()", "SystemExit(0)"):
        found, results = _must_fail(sb, f"def f(x):\n    raise {raised}\n", raised)
        problems += found + [f"{raised}: status {r.status}" for r in results if r.status != "raises"]
    return problems


def nan(sb: Sandbox) -> list[str]:
    problems = _must_fail(sb, "def f(x):\n    return float('nan')\n", "nan for numbers")[0]
    problems += _must_fail(sb, "def f(x):\n    return [float('nan')] * x\n", "nan in a list")[0]
    got = score_calls("def f(x):\n    return float('nan')\n", "f", [("1", float("nan"))], sandbox=sb)
    if not got.passed:
        problems.append(f"NaN did not match an expected NaN: {got.detail}")
    if score_calls("def f(x):\n    return 0.0\n", "f", [("1", float("nan"))], sandbox=sb).passed:
        problems.append("0.0 matched an expected NaN")
    if score_calls("def f(x):\n    return -0.0\n", "f", [("1", 0.0)], sandbox=sb).passed:
        problems.append("-0.0 matched 0.0 in exact mode")
    return problems


def crashes_do_not_end_the_run(sb: Sandbox) -> list[str]:
    """A call that exits, hangs or replies out of turn ends its call process; the next call
    gets a fresh one (module state is shared between the calls of one process, as in a test file)."""
    results = run_calls(
        "import os, time\nseen = []\ndef f(x):\n    seen.append(x)\n    if x == 1:\n"
        "        os._exit(3)\n    if x == 4:\n        time.sleep(60)\n    if x == 5:\n"
        "        for fd in range(3, 64):\n            try:\n"
        "                os.write(fd, b'9 ok 777\\n')\n"
        "            except OSError:\n                pass\n    return len(seen)\n",
        "f",
        ["1", "2", "3", "4", "5", "6"],
        4.0,
        sandbox=sb,
        call_timeout=0.5,
    )
    got = [(r.status, r.value) for r in results]
    want = [("crashed", None), ("ok", 1), ("ok", 2), ("timeout", None), ("crashed", None), ("ok", 1)]
    return [] if got == want else [f"unexpected results: {got}"]


CASES = {
    f.__name__: f
    for f in (
        return_value_subclass,
        early_exit,
        fake_verdict_lines,
        patched_serializers,
        memory_scans,
        trace_functions,
        atexit_hooks,
        outliving_forks,
        base_exceptions,
        nan,
        crashes_do_not_end_the_run,
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
