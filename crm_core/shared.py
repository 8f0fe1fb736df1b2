"""Generations every app process agrees on: in Redis when ``CRM_REDIS_URL`` is set, in this process otherwise.

A cache that a write must invalidate in *every* replica (``make cluster`` runs two app processes)
puts ``generation(name)`` into its key and calls ``bump(name)`` after the write, instead of
clearing itself: the other replicas see the new generation on their next read and miss.
One Redis ``GET`` per read (well under a millisecond on loopback). If Redis does not answer,
the generation reads as 0 and the failure is logged: the cache then expires by its TTL alone.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from crm_core.config import jobs_queue_name, redis_url

LOG = logging.getLogger("kestrel")

_local: dict[str, int] = {}
_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _client() -> Any | None:
    url = redis_url()
    if not url:
        return None
    with _lock:
        if url not in _clients:
            from redis import Redis

            _clients[url] = Redis.from_url(url, socket_timeout=2.0)
        return _clients[url]


def _key(name: str) -> str:
    return f"{jobs_queue_name()}.generation.{name}"


def generation(name: str) -> int:
    """The current generation of ``name`` (0 until first bumped)."""
    client = _client()
    if client is None:
        with _lock:
            return _local.get(name, 0)
    from redis.exceptions import RedisError

    try:
        return int(client.get(_key(name)) or 0)
    except RedisError as error:
        LOG.warning("shared generation %s not read, Redis did not answer: %s", name, error)
        return 0


def bump(name: str) -> None:
    """Move ``name`` to a new generation: every cache keyed by it misses on its next read, in every process."""
    client = _client()
    if client is None:
        with _lock:
            _local[name] = _local.get(name, 0) + 1
        return
    from redis.exceptions import RedisError

    try:
        client.incr(_key(name))
    except RedisError as error:
        LOG.warning("shared generation %s not bumped, Redis did not answer: %s", name, error)
