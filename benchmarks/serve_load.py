"""Load benchmark for `codemill serve`: dynamic batching on vs off, at several concurrencies.

Starts the real server twice as child processes (``python -m codemill.serve.cli``), one
with batching and one with ``--no-batching``, on the same model, and drives each with a
closed loop of C concurrent clients (each sends its next request when the previous one
finished). Both servers stay up and the rounds alternate between them, so load from other
processes on a shared machine hits both alike; the median round is reported. Reports
completions/s, generated tokens/s, p50/p95 request latency, the mean number of sequences
per decode step, and tokens per server CPU-second (independent of how busy the machine
is), and the batched/unbatched throughput ratio.

    .venv/bin/python benchmarks/serve_load.py                      # random Llama, built here
    .venv/bin/python benchmarks/serve_load.py --model runs/local/runs/<run>/train/model

Requests use fixed seeds, so both servers get the same prompts and sampling streams;
throughput counts the tokens actually generated (``usage.completion_tokens``), since a
request may end early at end-of-sequence.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from codemill.serve.smoke import LocalServer, wait_ready  # noqa: E402


def build_model(path: str, hidden: int, layers: int) -> str:
    """A randomly initialised Llama with the test suite's byte-level BPE tokenizer (nothing downloaded)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from tests.conftest import build_tiny_tokenizer

    tok = build_tiny_tokenizer(path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        num_key_value_heads=max(1, hidden // 64),
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    ).save_pretrained(path)
    return path


PROMPTS = [
    "def quicksort(items):\n",
    "import os\nimport sys\n\n\ndef main():\n",
    "class Stack:\n    def __init__(self):\n",
    "# read a CSV file and sum the second column\n",
    "for i in range(10):\n",
    "def fib(n):\n    if n < 2:\n",
]


async def closed_loop(url: str, concurrency: int, requests: int, max_tokens: int) -> dict:
    latencies: list[float] = []
    tokens = 0
    next_id = 0

    async def worker(client: httpx.AsyncClient):
        nonlocal tokens, next_id
        while next_id < requests:
            i, next_id = next_id, next_id + 1
            body = {"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": max_tokens, "temperature": 0.8, "seed": i}
            start = time.perf_counter()
            resp = await client.post("/v1/completions", json=body)
            resp.raise_for_status()
            latencies.append(time.perf_counter() - start)
            tokens += resp.json()["usage"]["completion_tokens"]

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    latencies.sort()
    return {
        "concurrency": concurrency,
        "requests": requests,
        "seconds": round(wall, 3),
        "completions_per_s": round(requests / wall, 2),
        "tokens_per_s": round(tokens / wall, 1),
        "generated_tokens": tokens,
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 3),
    }


def batch_stats(url: str) -> tuple[float, float]:
    """(batches, sequences) decoded so far, from the server's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    values = {
        s.name: s.value
        for f in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
        for s in f.samples
        if s.name in ("codemill_batch_size_count", "codemill_batch_size_sum")
    }
    return values.get("codemill_batch_size_count", 0.0), values.get("codemill_batch_size_sum", 0.0)


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(server: LocalServer, batching: bool, concurrency: int, args) -> dict:
    before, cpu, client_cpu = batch_stats(server.url), server_cpu_seconds(server.proc.pid), time.process_time()
    row = asyncio.run(closed_loop(server.url, concurrency, max(args.min_requests, 2 * concurrency), args.max_tokens))
    after, cpu = batch_stats(server.url), server_cpu_seconds(server.proc.pid) - cpu
    row["client_cpu_s"] = round(time.process_time() - client_cpu, 2)
    row.update(
        batching=batching,
        mean_batch=round((after[1] - before[1]) / max(1.0, after[0] - before[0]), 2),
        server_cpu_s=round(cpu, 2),
        tokens_per_cpu_s=round(row["generated_tokens"] / max(cpu, 1e-9), 1),
    )
    return row


def start_server(model: str, batching: bool, args) -> LocalServer:
    flags = [
        "--max-batch",
        str(args.max_batch),
        "--max-tokens-cap",
        str(args.max_tokens),
        "--torch-threads",
        str(args.torch_threads),
        "--batch-wait-ms",
        str(args.batch_wait_ms),
        "--admit-ratio",
        str(args.admit_ratio),
        "--admit-max-wait-steps",
        str(args.admit_max_wait_steps),
    ]
    if not batching:
        flags.append("--no-batching")
    log = os.path.join(tempfile.gettempdir(), f"serve_load_{'batched' if batching else 'unbatched'}.log")
    server = LocalServer(model, log, extra_args=tuple(flags)).__enter__()
    wait_ready(server.url, 300, server.alive)
    asyncio.run(closed_loop(server.url, 4, 8, args.max_tokens))  # warm-up, not measured
    return server


def run(model: str, args) -> dict[str, list[dict]]:
    """Both servers up at once; per concurrency, alternate on/off rounds so drifting load hits both alike."""
    servers = {True: start_server(model, True, args), False: start_server(model, False, args)}
    results: dict[str, list[dict]] = {"batched": [], "unbatched": []}
    try:
        for c in args.concurrency:
            rounds = {True: [], False: []}
            for _ in range(args.rounds):
                for batching, server in servers.items():
                    rounds[batching].append(measure(server, batching, c, args))
                    print(json.dumps(rounds[batching][-1]), flush=True)
            for batching, rows in rounds.items():  # the median round by throughput
                rows.sort(key=lambda r: r["tokens_per_s"])
                results["batched" if batching else "unbatched"].append(rows[len(rows) // 2])
    finally:
        for server in servers.values():
            server.stop()
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="", help="model directory (default: build a random Llama, see --hidden)")
    p.add_argument("--hidden", type=int, default=256, help="hidden size of the built model (default: 256)")
    p.add_argument("--layers", type=int, default=4, help="layers of the built model (default: 4)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16, 32])
    p.add_argument("--min-requests", type=int, default=64, help="requests per round: max(this, 2 x concurrency)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per point and mode; the median is reported")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--batch-wait-ms", type=float, default=5.0, help="the batched server's wait window (default: 5)")
    p.add_argument("--admit-ratio", type=float, default=0.3, help="the batched server's --admit-ratio")
    p.add_argument("--admit-max-wait-steps", type=int, default=8, help="the batched server's --admit-max-wait-steps")
    p.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="server's torch CPU threads (default: 1; on a shared machine more threads spin and stall)",
    )
    p.add_argument("--output", default="", help="write the results as JSON here")
    args = p.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        results = run(args.model or build_model(tmp, args.hidden, args.layers), args)
    print(f"\nload average before/after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        "\n| concurrency | batching | completions/s | tokens/s | p50 (s) | p95 (s) | mean batch | tokens/CPU-s |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for b, u in zip(results["batched"], results["unbatched"]):
        for row in (b, u):
            print(
                f"| {row['concurrency']} | {'on' if row['batching'] else 'off'} | {row['completions_per_s']} | "
                f"{row['tokens_per_s']} | {row['p50_s']} | {row['p95_s']} | {row['mean_batch']} | "
                f"{row['tokens_per_cpu_s']} |"
            )
    print(
        "\nthroughput ratio (tokens/s, on / off): "
        + ", ".join(
            f"c={b['concurrency']}: {b['tokens_per_s'] / u['tokens_per_s']:.2f}x"
            for b, u in zip(results["batched"], results["unbatched"])
        )
    )
    if args.output:
        with open(args.output, "w") as f:
            json.dump(
                {"args": vars(args), "load_avg_before": load_before, "load_avg_after": os.getloadavg(), **results},
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
