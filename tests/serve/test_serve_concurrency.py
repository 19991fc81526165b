"""Many concurrent requests are all answered, share model batches, and show up in /metrics."""

import asyncio

import httpx

from tests.serve.serve_helpers import API_KEY, metric_samples, sample


async def _fire(url: str, bodies: list[dict]) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=180, limits=limits) as c:
        return await asyncio.gather(*(c.post("/v1/completions", json=b) for b in bodies))


def test_64_concurrent_requests_are_all_answered_in_shared_batches(server, client):
    before = metric_samples(client)
    bodies = [
        {
            "prompt": f"def task_{i}(x):\n",
            "max_tokens": 4 + i % 9,
            "temperature": 0.7,
            "seed": i,
            **({"stream": True} if i % 8 == 0 else {}),
        }
        for i in range(64)
    ]
    responses = asyncio.run(_fire(server.url, bodies))
    assert [r.status_code for r in responses] == [200] * 64
    for body, resp in zip(bodies, responses):
        if body.get("stream"):
            assert resp.text.rstrip().endswith("data: [DONE]") and '"finish_reason":"' in resp.text
        else:
            choice = resp.json()["choices"][0]
            assert choice["finish_reason"] in ("stop", "length")
            assert resp.json()["usage"]["completion_tokens"] <= body["max_tokens"]
    after = metric_samples(client)
    steps = sample(after, "codemill_batch_size_count") - sample(before, "codemill_batch_size_count")
    row_steps = sample(after, "codemill_batch_size_sum") - sample(before, "codemill_batch_size_sum")
    assert row_steps / steps >= 4  # sequences per decode step: 1 if requests were served one at a time
    assert (
        sample(after, "codemill_e2e_request_latency_seconds_count")
        - sample(before, "codemill_e2e_request_latency_seconds_count")
        == 64
    )


def test_metrics_parse_as_prometheus_text_with_the_promised_families(client):
    client.post("/v1/completions", json={"prompt": "x = ", "max_tokens": 3})
    samples = metric_samples(client)
    names = {name for name, _ in samples}
    for family in (
        "codemill_num_requests_running",
        "codemill_num_requests_waiting",
        "codemill_time_to_first_token_seconds_bucket",
        "codemill_e2e_request_latency_seconds_bucket",
        "codemill_prompt_tokens_total",
        "codemill_generation_tokens_total",
        "codemill_request_success_total",
        "codemill_model_ready",
    ):
        assert family in names, family
    assert sample(samples, "codemill_model_ready") == 1
    assert sample(samples, "codemill_num_requests_running") == 0
    assert sample(samples, "codemill_prompt_tokens_total") > 0
    assert sample(samples, "codemill_time_to_first_token_seconds_count") >= 1
    generated = sample(samples, "codemill_generation_tokens_total")
    assert generated >= sum(v for (n, _), v in samples.items() if n == "codemill_request_success_total")
