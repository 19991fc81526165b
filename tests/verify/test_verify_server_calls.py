"""The service's "calls" requests: exactly what ``run_calls`` returns in-process (values as
strict wire text, every status, other hash seeds in sandboxes of their own), strict
validation with the reason, the service's limits, and the calls counted in /metrics."""

import json

import pytest

from codemill.evaluate.sandbox import Sandbox
from codemill.stage import InputError
from codemill.verify import client, run_calls
from codemill.verify.service import SeedSandboxes
from codemill.verify.strict import encode
from tests.verify.test_verify_server import KEY, call, sandbox, start  # noqa: F401  (sandbox is a fixture)

SOURCE = """\
import os


class Always(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__


def f(x, mode="plain"):
    if mode == "plain":
        return {"x": x, "pair": (x, -0.0), "words": {"ant", "bee", str(x)}, "nan": float("nan"), "b": b"\\x00"}
    if mode == "hash":
        return hash("codemill")
    if mode == "raise":
        raise KeyError(x)
    if mode == "subclass":
        return Always(x)
    if mode == "exit":
        os._exit(0)
    if mode == "spin":
        while True:
            pass
    if mode == "order":
        return list({"ant", "bee", "cat", "dog", "eel", "fox"})
"""
INPUTS = [
    "1",
    '"a"',
    '0, mode="hash"',
    '2, mode="raise"',
    '3, mode="subclass"',
    '0, mode="exit"',
    "undefined_name",
    "4",
]
JOBS = [
    (SOURCE, "f", INPUTS),
    (SOURCE, "f", ['0, mode="spin"', "5"]),
    (SOURCE, "missing", ["1"]),
    ("def g(:\n", "g", ["1"]),
    (SOURCE, "f", []),
]
SETTINGS = dict(timeout=2.0, call_timeout=0.5, memory_mb=256)


def wire(found):
    """CallResults as comparable data (NaN is not == NaN, its wire text is; a timeout's detail
    holds the seconds measured)."""
    return [
        [(r.status, encode(r.value) if r.status == "ok" else None, r.status != "timeout" and r.detail) for r in results]
        for results in found
    ]


@pytest.fixture(scope="module")
def service(sandbox):  # noqa: F811
    server, url = start(sandbox, running=2, queue=4, timeout=3.0)
    yield url, server
    server.shutdown()


def body(**extra):
    return {
        "benchmark": "calls",
        "samples": [{"task_id": "0", "completion": SOURCE, "entry_point": "f", "inputs": ["1"]}],
        **extra,
    }


@pytest.mark.parametrize("seed", ["0", "7"])
def test_calls_over_http_are_what_run_calls_returns_in_process(service, seed):
    url, _ = service
    remote = client.calls(JOBS, url=url, api_key=KEY, hash_seed=seed, **SETTINGS)
    local = [run_calls(*job, hash_seed=seed, **SETTINGS) for job in JOBS]
    assert wire(remote) == wire(local)
    statuses = [r.status for r in remote[0]]
    assert statuses == ["ok", "ok", "ok", "raises", "unserializable", "crashed", "bad_input", "ok"]
    assert [(r.status, r.value) for r in remote[1]] == [
        ("timeout", None),
        (
            "ok",
            {"x": 5, "pair": (5, -0.0), "words": {"ant", "bee", "5"}, "nan": remote[1][1].value["nan"], "b": b"\x00"},
        ),
    ]
    assert remote[2][0].status == "no_entry_point" and remote[3][0].status == "raises" and remote[4] == []
    value = remote[0][0].value  # decoded strictly: exact types, -0.0 and NaN kept
    assert type(value["pair"][1]) is float and str(value["pair"][1]) == "-0.0" and value["nan"] != value["nan"]
    assert value["b"] == b"\x00" and value["words"] == {"ant", "bee", "1"}


def test_each_hash_seed_runs_under_its_own_pythonhashseed(service):
    url, server = service
    hashes = {
        seed: client.calls([(SOURCE, "f", ['0, mode="hash"'])], url=url, api_key=KEY, hash_seed=seed)[0][0].value
        for seed in ("0", "1", "2")
    }
    assert len(set(hashes.values())) == 3
    assert hashes["2"] == run_calls(SOURCE, "f", ['0, mode="hash"'], hash_seed="2")[0].value
    assert {"1", "2"} <= set(server.seeds.started())


def test_the_rows_keep_the_wire_text_and_the_fields_of_every_row(service):
    url, _ = service
    code, _, text = call(url, "/v1/score", body(hash_seed="3", **SETTINGS))
    row = json.loads(text)["results"][0]
    assert code == 200 and set(row) == {"benchmark", "task_id", "mode", "index", "completion", "calls"}
    (result,) = row["calls"]
    assert result["status"] == "ok" and result["detail"] == ""
    assert json.loads(result["value"])[0] == "d"  # the strict wire form, not a bare JSON object
    assert "passed" not in row


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"hash_seed": 3}, "hash_seed"),
        ({"hash_seed": "random"}, "hash_seed"),
        ({"hash_seed": "4294967296"}, "hash_seed"),
        ({"timeout": 10}, '"timeout" must be a number in (0, 3.0]'),
        ({"timeout": 0}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"call_timeout": 2.5, "timeout": 2.0}, "call_timeout"),
        ({"memory_mb": 4096}, '"memory_mb" must be an integer 16..512'),
        ({"memory_mb": 100.5}, "memory_mb"),
        ({"result_bytes": 0}, "result_bytes"),
        ({"samples": [{"task_id": "0", "completion": "x", "inputs": []}]}, "entry_point"),
        ({"samples": [{"task_id": "0", "completion": "x", "entry_point": "a-b", "inputs": []}]}, "entry_point"),
        ({"samples": [{"task_id": "0", "completion": "x", "entry_point": "f", "inputs": "1"}]}, "inputs"),
        ({"samples": [{"task_id": "0", "completion": "x", "entry_point": "f", "inputs": [1]}]}, "inputs"),
        ({"samples": [{"task_id": "0", "completion": "x", "entry_point": "f", "inputs": ["1"] * 1001}]}, "at most"),
        ({"samples": [{"task_id": "0", "entry_point": "f", "inputs": []}]}, "samples[0]"),
    ],
)
def test_malformed_calls_requests_get_400_with_the_reason(service, extra, message):
    url, _ = service
    code, _, text = call(url, "/v1/score", body(**extra))
    assert code == 400 and message in json.loads(text)["error"]["message"], text


def test_too_many_calls_in_one_request_get_400(service):
    url, _ = service
    samples = [{"task_id": str(n), "completion": "x", "entry_point": "f", "inputs": ["1"] * 1000} for n in range(101)]
    code, _, text = call(url, "/v1/score", {"benchmark": "calls", "samples": samples})
    assert code == 400 and "101000 calls" in json.loads(text)["error"]["message"]


def test_calls_need_the_key_and_are_counted_in_the_metrics(service):
    url, _ = service
    assert call(url, "/v1/score", body(), key="wrong")[0] == 401
    with pytest.raises(InputError, match="HTTP 401"):
        client.calls([(SOURCE, "f", ["1"])], url=url, api_key="wrong")
    client.calls([(SOURCE, "f", ["1", '2, mode="raise"'])], url=url, api_key=KEY)
    metrics = call(url, "/metrics")[2].decode()
    ok = next(line for line in metrics.splitlines() if line.startswith('codemill_sandbox_calls_total{status="ok"}'))
    assert float(ok.split()[-1]) >= 1
    assert 'codemill_sandbox_calls_total{status="raises"}' in metrics
    assert 'codemill_sandbox_verdicts_total{benchmark="calls",verdict="no_verdict"}' in metrics


def test_in_process_calls_without_a_url_are_run_calls(sandbox):  # noqa: F811
    local = client.calls(JOBS[:2], hash_seed="0", sandbox=sandbox, workers=2, **SETTINGS)
    assert wire(local) == wire([run_calls(*job, sandbox=sandbox, **SETTINGS) for job in JOBS[:2]])
    with pytest.raises(InputError, match="timeout"):
        client.calls(JOBS[:1], sandbox=sandbox, timeout=0)


def test_idle_seed_sandboxes_beyond_keep_are_closed(sandbox):  # noqa: F811
    seeds = SeedSandboxes(sandbox, keep=1)
    try:
        with seeds.get("0") as box:
            assert box is sandbox and seeds.started() == []
        for seed in ("11", "12", "13"):
            with seeds.get(seed) as box:
                assert isinstance(box, Sandbox) and box.hash_seed == seed
                assert run_calls(SOURCE, "f", ['0, mode="hash"'], sandbox=box)[0].status == "ok"
        assert seeds.started() == ["13"]
        with seeds.get("13") as again, seeds.get("14"):
            assert again.hash_seed == "13" and seeds.started() == ["13", "14"]  # in use: kept past keep
        assert seeds.started() == ["13"]  # 14 was released first, while 13 was still in use
    finally:
        seeds.close()
    assert seeds.started() == []
