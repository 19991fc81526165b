"""The teacher: any OpenAI-compatible ``/v1/chat/completions`` endpoint, asked concurrently.

- ``asyncio`` + ``httpx.AsyncClient``, at most ``concurrency`` requests in flight;
- each request has ``request_timeout_s``; a timeout, a connection error, 429 or 5xx is
  retried up to ``max_retries`` times, waiting ``Retry-After`` when the server sends it,
  else ``backoff_s * 2**attempt`` (capped at 60 s);
- 401/403 stop the stage at once (no key or the wrong one); so does the first request
  whose retries are spent on timeouts or connection errors while no request has been
  answered yet (an unreachable or dead teacher), and a run in which no request at all was
  answered (a wrong model name: 404 on every request): one :class:`InputError` naming the URL;
- a reply that is a non-retryable HTTP error or not a chat completion is that request's
  ``teacher_error`` and the stage goes on;
- every outcome is cached under ``<output>/_cache/teacher/<key[:2]>/<key>.json`` (``key``: the
  SHA-256 of the request body, which holds the model, messages, sampling settings and
  the sample's seed), written atomically through :mod:`codemill.io`, so a preempted or
  repeated run sends nothing it already has. Failures are cached too (a rerun reports
  the same ``teacher_error``); ``retry_failed`` resends them.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from tqdm import tqdm

from codemill import io
from codemill.stage import InputError

MAX_BACKOFF_S = 60.0
MAX_RETRY_AFTER_S = 300.0
RETRYABLE = {429, 500, 502, 503, 504}
FATAL = {401, 403}


@dataclass(frozen=True)
class Request:
    """One chat request; ``body`` is exactly what is sent (and what the cache key hashes)."""

    body: dict

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class Reply:
    """A request's outcome: the answer's text, or ``error`` (a one-line reason)."""

    text: str = ""
    error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    cached: bool = False

    def to_json(self) -> dict:
        return {
            "text": self.text,
            "error": self.error,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reason": self.finish_reason,
        }


@dataclass
class Usage:
    """Token and request accounting for one run (``cache_hits`` cost nothing)."""

    http_requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: dict = field(default_factory=dict)


class TeacherUnavailable(InputError):
    """The teacher cannot answer at all (unreachable, 401, every request timing out)."""


def chat_url(url: str) -> str:
    """``http://host:port``, ``.../v1`` or the full path -> the chat completions URL."""
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    return (url if url.endswith("/v1") else url + "/v1") + "/chat/completions"


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def parse_completion(data) -> Reply:
    """A Reply from a chat completion's JSON; a reasoning field (vLLM's ``reasoning_content``,
    some providers' ``reasoning``) is put back in front as ``<think>...</think>``."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        text = message.get("content") or ""
        if not isinstance(text, str):
            raise TypeError("content is not text")
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        if isinstance(reasoning, str) and reasoning.strip() and "<think>" not in text:
            text = f"<think>\n{reasoning.strip()}\n</think>\n\n{text}"
        usage = data.get("usage") or {}
        return Reply(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=str(choice.get("finish_reason") or ""),
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        return Reply(error=f"not a chat completion ({type(e).__name__}: {e})"[:300])


def error_kind(error: str) -> str:
    """``timeout``, ``connect``, ``http_<status>`` or ``bad_reply``: the stats' ``teacher_errors`` keys."""
    if error.startswith("timed out"):
        return "timeout"
    if error.startswith("cannot connect"):
        return "connect"
    if error.startswith("HTTP ") and error[5:8].isdigit() and not error.startswith("HTTP 200"):
        return f"http_{error[5:8]}"
    return "bad_reply"


class Teacher:
    """Asks many chat requests with retries and a response cache; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        cache: str,
        api_key: str = "",
        concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        retry_failed: bool = False,
    ):
        self.url, self.endpoint, self.cache = url, chat_url(url), cache
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.concurrency, self.timeout_s = concurrency, timeout_s
        self.max_retries, self.backoff_s, self.retry_failed = max_retries, backoff_s, retry_failed
        self.usage = Usage()
        self._answered = 0

    # ------------------------------------------------------------------ cache

    def _cache_url(self, key: str) -> str:
        return io.join(self.cache, key[:2], f"{key}.json")  # 256 folders: no single huge directory

    def _cached_keys(self) -> set[str]:
        if not io.is_s3(self.cache) and not io.exists(self.cache):
            return set()
        return {os.path.basename(u)[:-5] for u in io.list_files(self.cache, ".json")}

    def _from_cache(self, key: str) -> Reply | None:
        try:
            data = io.read_json(self._cache_url(key))
            reply = Reply(**{k: data[k] for k in Reply.to_json(Reply())}, cached=True)
        except (io.StorageError, ValueError, KeyError, TypeError):
            return None  # an unreadable entry is asked again
        return None if (reply.error and self.retry_failed) else reply

    # ------------------------------------------------------------------ asking

    def ask(self, requests: list[Request], desc: str = "teacher") -> list[Reply]:
        """One Reply per request, in order. Raises TeacherUnavailable when the teacher cannot answer."""
        keys = self._cached_keys()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:  # S3 reads are round trips: overlap them
            replies: list[Reply | None] = list(
                pool.map(lambda r: self._from_cache(r.key) if r.key in keys else None, requests)
            )
        self.usage.cache_hits = sum(r is not None for r in replies)
        self._answered = sum(r is not None and not r.error for r in replies)
        todo = [i for i, r in enumerate(replies) if r is None]
        if todo:
            for i, reply in zip(todo, asyncio.run(self._ask_all([requests[i] for i in todo], desc))):
                replies[i] = reply
        if replies and all(r.error for r in replies):
            # a wrong model name (404 on every request), a teacher that only ever says 429, ...
            raise TeacherUnavailable(
                f"teacher {self.url}: none of the {len(replies)} requests was answered "
                f"(first: {replies[0].error}); the outcomes are cached, so after fixing it "
                f"rerun with --retry-failed"
            )
        for reply in replies:  # cached replies count too: the stats describe the data, not this run's traffic
            self.usage.prompt_tokens += reply.prompt_tokens
            self.usage.completion_tokens += reply.completion_tokens
            if reply.error:
                kind = error_kind(reply.error)
                self.usage.errors[kind] = self.usage.errors.get(kind, 0) + 1
        return replies

    async def _ask_all(self, requests: list[Request], desc: str) -> list[Reply]:
        gate = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        bar = tqdm(total=len(requests), desc=desc, file=sys.stderr, disable=len(requests) < 2)
        async with httpx.AsyncClient(timeout=self.timeout_s, limits=limits, headers=self.headers) as client:

            async def one(request: Request) -> Reply:
                async with gate:
                    reply = await self._ask_one(client, request)
                bar.update(1)
                return reply

            tasks = [asyncio.ensure_future(one(r)) for r in requests]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
            finally:
                bar.close()

    async def _ask_one(self, client: httpx.AsyncClient, request: Request) -> Reply:
        transport_error = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.usage.retries += 1
            self.usage.http_requests += 1
            wait = None
            try:
                response = await client.post(self.endpoint, json=request.body)
            except httpx.TimeoutException:
                transport_error = f"timed out after {self.timeout_s:g}s"
            except httpx.TransportError as e:
                transport_error = f"cannot connect ({type(e).__name__}: {e})"
            else:
                transport_error = ""
                if response.status_code in FATAL:
                    raise TeacherUnavailable(
                        f"teacher {self.url}: HTTP {response.status_code} {response.reason_phrase} "
                        f"(check --teacher-api-key-env)"
                    )
                if response.status_code == 200:
                    try:
                        reply = parse_completion(response.json())
                    except ValueError:
                        reply = Reply(error="HTTP 200 with a body that is not JSON")
                    return self._done(request, reply)
                if response.status_code not in RETRYABLE:
                    return self._done(request, Reply(error=f"HTTP {response.status_code}: {response.text[:200]}"))
                wait = retry_after(response)
                last = f"HTTP {response.status_code} after {attempt + 1} tries"
            if attempt < self.max_retries:
                await asyncio.sleep(wait if wait is not None else min(MAX_BACKOFF_S, self.backoff_s * 2**attempt))
        if transport_error and self._answered == 0:
            raise TeacherUnavailable(
                f"teacher {self.url}: {transport_error} on every try "
                f"({self.max_retries + 1} tries) and no request has been answered"
            )
        return self._done(
            request, Reply(error=(transport_error + f" ({self.max_retries + 1} tries)") if transport_error else last)
        )

    def _done(self, request: Request, reply: Reply) -> Reply:
        if not reply.error:
            self._answered += 1
        io.write_atomic(self._cache_url(request.key), json.dumps(reply.to_json(), ensure_ascii=False).encode())
        return reply
