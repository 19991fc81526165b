"""``codemill sandbox serve``: the verifier over HTTP (see ``server.py`` and docs/evaluate.md).

codemill sandbox serve --port 8080 --api-key-env CODEMILL_SANDBOX_API_KEY [--workers N]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sandbox",
        help="the sandboxed verifier as an HTTP service",
        description="Run the sandboxed verifier as a service other steps send executions to.",
    )
    actions = p.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    s = actions.add_parser(
        "serve",
        help="serve POST /v1/score, /metrics and /health",
        description="Serve POST /v1/score (Bearer auth on every route but /health).",
    )
    s.add_argument("--host", default="0.0.0.0", help="address to bind (default: 0.0.0.0)")
    s.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    key = s.add_mutually_exclusive_group(required=True)
    key.add_argument("--api-key-env", default="", help="name of the environment variable holding the API key")
    key.add_argument("--api-key", default="", help="the API key itself (prefer --api-key-env)")
    s.add_argument(
        "--workers", type=int, default=0, help="sandboxed runs at a time (0 = the CPUs this process may use)"
    )
    s.add_argument("--running", type=int, default=1, help="requests scored at a time (default: 1)")
    s.add_argument("--queue", type=int, default=8, help="requests waiting beyond those; more get 429 (default: 8)")
    s.add_argument("--max-body-mb", type=float, default=16, help="largest request body, MiB (default: 16)")
    s.add_argument("--timeout", type=float, default=3.0, help="wall seconds per sample (default: 3)")
    s.add_argument("--memory-mb", type=int, default=1024, help="address-space limit per sample, MiB (default: 1024)")
    s.add_argument(
        "--require-isolation",
        action="store_true",
        help="refuse to start when a sandbox layer is missing (on by default in the chart)",
    )
    s.add_argument("--sandbox-python", default="", help="interpreter that runs samples (default: probed)")
    s.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from codemill.evaluate.config import cpu_budget
    from codemill.evaluate.sandbox import Limits, Sandbox
    from codemill.stage import InputError
    from codemill.verify.server import ServerConfig, serve

    api_key = args.api_key or os.environ.get(args.api_key_env, "")
    if not api_key:
        raise InputError(f"--api-key-env {args.api_key_env}: the variable is unset or empty; the service needs a key")
    if args.port < 0 or args.workers < 0 or args.running < 1 or args.queue < 0 or args.max_body_mb <= 0:
        raise InputError("--port/--workers must be >= 0, --running >= 1, --queue >= 0, --max-body-mb > 0")
    config = ServerConfig(
        api_key,
        workers=args.workers or cpu_budget(),
        running=args.running,
        queue=args.queue,
        max_body_bytes=int(args.max_body_mb * (1 << 20)),
        timeout=args.timeout,
    )
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb)
    with Sandbox(limits, args.sandbox_python, args.require_isolation) as sandbox:
        layers = ", ".join(f"{k}={v}" for k, v in sandbox.isolation["layers"].items())
        print(
            f"[sandbox] serving on {args.host}:{args.port} workers={config.workers} python={sandbox.python} {layers}",
            file=sys.stderr,
            flush=True,
        )
        signal.signal(signal.SIGTERM, _stop)  # a pod's stop: leave through the with block (sandbox cleaned up)
        try:
            serve(config, sandbox, args.host, args.port)
        except KeyboardInterrupt:
            pass
    return 0


def _stop(signum, frame):
    raise KeyboardInterrupt
