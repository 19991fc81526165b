"""uvicorn, bounded: a deadline on request headers, and a shutdown the app hears about first.

* **Slow clients.** uvicorn's h11 protocol starts no timer before a connection's first
  request, and its keep-alive timer stops at the first byte of the next one, so a client
  that opens a connection and sends headers a byte at a time (or never finishes them)
  holds a file descriptor for ever (slowloris). :func:`bounded_protocol` adds one deadline:
  a connection must deliver a complete request line and headers within
  ``header_timeout_s`` of opening (or of its previous response), else it gets
  ``408 Request Timeout`` and is closed. Header size is bounded by h11 already (16 KiB).
* **Shutdown.** :class:`GracefulServer` tells the app when shutdown begins, so the app can
  end what is still running at the end of its grace period with proper answers
  (:meth:`~codemill.serve.app.ServerState.begin_shutdown`); uvicorn's own deadline, set a
  few seconds later, stays as a backstop.
"""

from __future__ import annotations

import json

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from codemill.serve.config import ServeConfig

SHUTDOWN_BACKSTOP_S = 5.0  # uvicorn cancels handlers this long after the app's own grace period

_TIMEOUT_BODY = json.dumps(
    {
        "error": {
            "message": "request headers not received in time",
            "type": "invalid_request_error",
            "param": None,
            "code": "request_timeout",
        }
    }
).encode()
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY
)


class BoundedHeadersProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's line and headers."""

    header_timeout_s = 10.0
    _header_timer = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request on this keep-alive connection gets the same deadline

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            # No request is in progress, so nothing else writes to this connection.
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()


def bounded_protocol(header_timeout_s: float) -> type[BoundedHeadersProtocol]:
    return type("BoundedHeadersProtocol", (BoundedHeadersProtocol,), {"header_timeout_s": header_timeout_s})


class GracefulServer(uvicorn.Server):
    """``uvicorn.Server`` that calls ``on_shutdown()`` as shutdown begins (SIGTERM or ``should_exit``)."""

    def __init__(self, config: uvicorn.Config, on_shutdown):
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets=None) -> None:
        self._on_shutdown()
        await super().shutdown(sockets)


def uvicorn_config(app, config: ServeConfig, **overrides) -> uvicorn.Config:
    options = {
        "host": config.host,
        "port": config.port,
        "access_log": config.access_log,
        "log_level": "info",
        "lifespan": "on",
        "http": bounded_protocol(config.header_timeout_s),
        "timeout_graceful_shutdown": config.graceful_shutdown_s + SHUTDOWN_BACKSTOP_S,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def build_server(app, config: ServeConfig, **overrides) -> GracefulServer:
    """The uvicorn server for ``create_app``'s app, wired to its state's shutdown hook."""
    return GracefulServer(uvicorn_config(app, config, **overrides), app.state.codemill.begin_shutdown)
