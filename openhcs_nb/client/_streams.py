"""The I/O thread's side of executions: SUB events and fetches into deliveries.

For every followed execution a :class:`~openhcs_nb.client._follow.Follower`
decides what to deliver and when to fetch; this module does the sending:

- ``follow`` subscribes to the execution's topic *first*, then fetches from
  seq 0, so nothing published between the two is lost.
- A SUB event, or a fetch reply, feeds the follower; its deliveries go to the
  :class:`~openhcs_nb.client.execution.Execution` in seq order.
- Silence is suspicious (a dropped SUB link, a lost ``Finished``, a restarted
  server): after ``quiet_after`` seconds without news a safety fetch is sent,
  and again every ``quiet_after`` seconds until the execution finishes. A
  fetch that times out is simply retried that way once the server is back.
- An execution that the server ends without a ``Finished`` event (its reply
  says ``complete``) is finished from its ``Status`` record.
- A reply too large for one message halves that execution's fetch limit.
- Once finished, the topic is unsubscribed and the execution forgotten here;
  so is every execution when the server is lost (:meth:`StreamHub.abandon`).

Everything in this module runs on the I/O thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openhcs_nb.client._follow import Delivery, Follower
from openhcs_nb.client.errors import (
    RemoteBusy,
    RemoteError,
    RemoteInternalError,
    RemoteSessionInvalid,
    ServerUnavailable,
)
from openhcs_nb.protocol import Event, Fetch, FetchReply, Status, event_topic

if TYPE_CHECKING:
    from openhcs_nb.client._transport import Transport
    from openhcs_nb.client.execution import Execution

log = logging.getLogger("openhcs_nb.client")

#: Errors after which a later fetch may well succeed.
_TRANSIENT = (ServerUnavailable, RemoteBusy, RemoteInternalError, RemoteSessionInvalid)


@dataclass
class _Stream:
    follower: Follower
    execution: Execution
    limit: int
    topic: bytes = b""
    last_news: float = field(default_factory=time.monotonic)
    ending: bool = False


class StreamHub:
    """Follows executions for one connection; bind a transport before use."""

    def __init__(
        self, *, fetch_limit: int = 64, quiet_after: float = 1.0, timeout: float = 10.0
    ) -> None:
        self._transport: Transport | None = None
        self._streams: dict[str, _Stream] = {}
        self._limit = fetch_limit
        self._quiet_after = quiet_after
        self._timeout = timeout

    def bind(self, transport: Transport) -> None:
        """Use ``transport`` to subscribe and fetch."""
        self._transport = transport

    @property
    def followed(self) -> list[str]:
        """Ids of the executions still being followed."""
        return list(self._streams)

    def follow(self, execution: Execution, stream_key: str = "") -> None:
        """Subscribe to ``execution``'s events, then backfill from seq 0.

        ``stream_key`` is the capability the server gave the owner (in
        ``Submitted`` or ``ExecutionInfo``); without it the server admits no
        subscription and the stream is fed by fetches alone.
        """
        assert self._transport is not None
        if execution.id in self._streams or execution.done():
            return
        topic = event_topic(execution.id, stream_key)
        if stream_key:
            self._transport.subscribe(topic)
        stream = _Stream(Follower(execution.id), execution, self._limit, topic)
        self._streams[execution.id] = stream
        self._pump(stream)

    def on_event(self, event: Event, buffers: list[memoryview]) -> None:
        """An event arrived on SUB."""
        stream = self._streams.get(event.execution_id)
        if stream is None:
            return
        stream.last_news = time.monotonic()
        self._deliver(stream, stream.follower.on_published(event, buffers))
        self._pump(stream)

    def on_tick(self, now: float) -> None:
        """Send safety fetches for executions that have been quiet too long."""
        for stream in list(self._streams.values()):
            quiet = now - stream.last_news >= self._quiet_after
            if quiet and not stream.follower.fetching and not stream.ending:
                stream.last_news = now
                stream.follower.request_fetch()
                self._pump(stream)

    def on_link(self, link: str, up: bool) -> None:
        """A socket's link came up again: backfill what it may have missed."""
        if up:
            log.debug("%s link up: backfilling %d executions", link, len(self._streams))
            self.resync()

    def abandon(self, error_for: Callable[[Execution], RemoteError]) -> None:
        """Stop following every execution; each handle ends with its error.

        Used when the server is lost (``_heartbeat``): the handles say so at
        once rather than wait for a server that may never come back.
        """
        for stream in list(self._streams.values()):
            self._drop(stream)
            stream.execution._stream_failed(error_for(stream.execution))

    def resync(self) -> None:
        """Fetch for every followed execution now (after a lost SUB link)."""
        for stream in list(self._streams.values()):
            stream.follower.request_fetch()
            self._pump(stream)

    def _pump(self, stream: _Stream) -> None:
        assert self._transport is not None
        since = stream.follower.fetch_request()
        if since is None:
            return
        fetch = Fetch(
            rid=0,
            execution_id=stream.follower.execution_id,
            since_seq=since,
            limit=stream.limit,
        )
        self._transport.send(
            fetch,
            (),
            self._timeout,
            lambda reply, buffers: self._fetched(stream, reply, buffers),
            lambda error: self._fetch_failed(stream, error),
        )

    def _fetched(
        self, stream: _Stream, reply: FetchReply, buffers: Sequence[Any]
    ) -> None:
        stream.last_news = time.monotonic()
        follower = stream.follower
        self._deliver(
            stream, follower.on_fetched(reply.events, buffers, reply.last_seq)
        )
        if follower.finished:
            return
        if reply.complete and follower.last_seq >= reply.last_seq:
            self._end_without_event(stream, reply.state)
            return
        self._pump(stream)

    def _fetch_failed(self, stream: _Stream, error: BaseException) -> None:
        stream.follower.on_fetch_failed()
        stream.last_news = time.monotonic()
        if getattr(error, "code", None) == "too_large" and stream.limit > 1:
            # Too many previews for one message: ask for fewer events at a time.
            stream.limit //= 2
            stream.follower.request_fetch()
            self._pump(stream)
            return
        if isinstance(error, _TRANSIENT):  # ConnectionClosed included
            log.debug("fetch for %s failed, will retry: %s", stream.execution.id, error)
            return
        log.warning("stopped following %s: %s", stream.execution.id, error)
        self._drop(stream)
        stream.execution._stream_failed(
            error if isinstance(error, RemoteError) else RemoteError(str(error))
        )

    def _end_without_event(self, stream: _Stream, state: str) -> None:
        """The server ended the run without a Finished event: ask Status why."""
        assert self._transport is not None
        stream.ending = True
        self._drop(stream)

        def finish(reply: Any, _buffers: Sequence[Any]) -> None:
            stream.execution._finish_from_info(reply.execution)

        def fallback(_error: BaseException) -> None:
            stream.execution._finish_from_state(state)

        self._transport.send(
            Status(rid=0, execution_id=stream.execution.id),
            (),
            self._timeout,
            finish,
            fallback,
        )

    def _deliver(self, stream: _Stream, deliveries: list[Delivery]) -> None:
        for event, buffers in deliveries:
            stream.execution._apply(event, buffers)
        if stream.follower.finished:
            self._drop(stream)

    def _drop(self, stream: _Stream) -> None:
        assert self._transport is not None
        if self._streams.pop(stream.follower.execution_id, None) is not None:
            self._transport.unsubscribe(stream.topic)
