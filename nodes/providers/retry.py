"""When a failed provider request is tried again, and how long to wait first.

Connect errors, timeouts, dropped connections and HTTP 408, 409, 429 and 5xx are retried with
exponential backoff and jitter (:class:`RetryPolicy`), honouring ``Retry-After`` and
``retry-after-ms`` (:func:`parse_retry_after`) and the ``x-should-retry`` header both OpenAI
and Anthropic send. :func:`backoff_before_retry` makes that call for one failed attempt and
waits; the client (:mod:`rillet.nodes.providers.http`) only asks it until the first event has
been handed over, since after that a retry would repeat output the consumer already has.

>>> policy = RetryPolicy(jitter=0.0)
>>> policy.delay(3), policy.delay(3, retry_after=parse_retry_after({"Retry-After": "5"}))
(2.0, 5.0)
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from typing import Final

import attrs
import httpx
import trio

from rillet.runtime.lowlevel import get_logger

__all__ = ["RetryPolicy", "backoff_before_retry", "parse_retry_after", "positive_seconds"]

_RETRY_STATUSES: Final = frozenset({408, 409, 429})


def positive_seconds(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    """An attrs validator: ``value`` is a number of seconds > 0 (``bool`` is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{attribute.name} must be a number > 0 (seconds), got {value!r}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how long to wait before trying a failed request again.

    Retry ``n`` (1-based) waits ``min(max_backoff, initial_backoff * 2**(n-1))``, less a random
    fraction up to ``jitter`` of it (so clients that failed together do not return together),
    unless the server said how long with ``Retry-After``: that is honoured when it is at most
    ``max_retry_after`` seconds.

    >>> policy = RetryPolicy(initial_backoff=1.0, jitter=0.0)
    >>> [policy.delay(n) for n in (1, 2, 3)], policy.delay(1, retry_after=7.0)
    ([1.0, 2.0, 4.0], 7.0)
    """

    max_retries: int = attrs.field(default=2)
    initial_backoff: float = attrs.field(default=0.5, validator=positive_seconds)
    max_backoff: float = attrs.field(default=8.0, validator=positive_seconds)
    jitter: float = attrs.field(default=0.25)
    max_retry_after: float = attrs.field(default=60.0, validator=positive_seconds)

    @max_retries.validator
    def _check_max_retries(self, attribute: attrs.Attribute[int], value: int) -> None:
        if type(value) is not int or value < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {value!r}")

    @jitter.validator
    def _check_jitter(self, attribute: attrs.Attribute[float], value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"jitter must be a fraction in [0, 1], got {value!r}")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if retry_after is not None and 0 <= retry_after <= self.max_retry_after:
            return retry_after
        base: float = min(self.max_backoff, self.initial_backoff * 2.0 ** (retry - 1))
        return base * (1 - self.jitter * random.random())


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be seconds or an HTTP date (``now`` is the wall clock, for tests).

    >>> parse_retry_after({"retry-after": "2"}), parse_retry_after({"retry-after-ms": "250"})
    (2.0, 0.25)
    >>> parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:05 GMT"}, now=1445412480.0)
    5.0
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    if (millis := lowered.get("retry-after-ms")) is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


async def backoff_before_retry(
    policy: RetryPolicy,
    attempt: int,
    failure: httpx.Response | httpx.TransportError,
    *,
    provider: str,
) -> bool:
    """Wait out the backoff and return True if ``failure`` deserves another attempt.

    Returns False at once when ``attempt`` (the requests made so far, 1 after the first) has
    used up ``policy.max_retries``, or when the failure is not transient: an HTTP status
    outside 408, 409, 429 and 5xx (unless ``x-should-retry`` says otherwise), or a proxy,
    protocol-misuse or unsupported-scheme error, which are configuration.
    """
    if attempt > policy.max_retries:
        return False
    if isinstance(failure, httpx.Response):
        if not _retryable_status(failure.status_code, failure.headers):
            return False
        retry_after, reason = parse_retry_after(failure.headers), f"HTTP {failure.status_code}"
    else:
        if not isinstance(failure, (httpx.TimeoutException, httpx.NetworkError,
                                    httpx.RemoteProtocolError)):
            return False
        retry_after, reason = None, type(failure).__name__
    delay = policy.delay(attempt, retry_after)
    # Looked up per retry: logging may have been switched on after the model was made.
    get_logger(provider=provider).warning(
        "provider_request_retried", attempt=attempt, reason=reason, delay=round(delay, 3))
    await trio.sleep(delay)
    return True


def _retryable_status(status: int, headers: Mapping[str, str]) -> bool:
    # OpenAI's and Anthropic's servers say so explicitly when they know better than the status.
    verdict = headers.get("x-should-retry")
    if verdict == "true":
        return True
    if verdict == "false":
        return False
    return status in _RETRY_STATUSES or status >= 500
