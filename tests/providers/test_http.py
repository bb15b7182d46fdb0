"""The provider-neutral HTTP pieces: errors, backoff, Retry-After, timeouts, error bodies."""

from __future__ import annotations

import pickle

import pytest

from rillet.nodes.providers.errors import (
    MissingAPIKeyError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    error_details,
)
from rillet.nodes.providers.http import Timeouts
from rillet.nodes.providers.retry import RetryPolicy, parse_retry_after
from rillet.runtime.errors import RilletError


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter() -> None:
    """Each retry waits twice as long, never more than max_backoff, less at most jitter."""
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=5.0, jitter=0.25)
    for retry, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        delays = {policy.delay(retry) for _ in range(50)}
        assert all(base * 0.75 <= d <= base for d in delays)
        assert len(delays) > 1  # jittered, so clients that failed together spread out


def test_retry_after_wins_unless_it_is_too_long() -> None:
    """A server's Retry-After is honoured up to max_retry_after; beyond, backoff applies."""
    policy = RetryPolicy(initial_backoff=1.0, jitter=0.0, max_retry_after=30.0)
    assert policy.delay(1, retry_after=12.5) == 12.5
    assert policy.delay(1, retry_after=0.0) == 0.0
    assert policy.delay(2, retry_after=3600.0) == 2.0


def test_retry_after_is_read_in_all_three_forms() -> None:
    """retry-after-ms, seconds, and an HTTP date; garbage is ignored."""
    assert parse_retry_after({"Retry-After-Ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"},
                             now=1445412480.0) == 10.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_policies_reject_nonsense_with_the_field_name() -> None:
    """Bad settings fail at construction, saying which one."""
    with pytest.raises(ValueError, match=r"^max_retries must be an int >= 0, got -1$"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match=r"^read must be a number > 0 \(seconds\), got 0$"):
        Timeouts(read=0)
    assert Timeouts.coerce(3).to_httpx().read == 3


def test_provider_errors_carry_the_facts_and_survive_pickling() -> None:
    """Status, provider message, type and request id are attributes and in the text."""
    error = ProviderError(provider="openai", status=401, provider_message="Incorrect API key",
                          error_type="invalid_api_key", request_id="req_9")
    assert str(error) == ("openai: HTTP 401 (invalid_api_key): Incorrect API key [request req_9]"
                          "; check the API key (argument api_key or the provider's *_API_KEY "
                          "variable)")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.status, copy.provider_message, copy.request_id) == (401, "Incorrect API key",
                                                                     "req_9")
    timeout = ProviderTimeout(provider="anthropic", provider_message="sent nothing for 5 s",
                              error_type="read_timeout")
    assert isinstance(timeout, TimeoutError) and isinstance(timeout, RilletError)
    assert type(pickle.loads(pickle.dumps(timeout))) is ProviderTimeout
    assert issubclass(ProviderConnectionError, ProviderError)
    assert isinstance(MissingAPIKeyError(provider="openai", env_var="OPENAI_API_KEY"), ValueError)


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"error": {"message": "Rate limit", "type": "requests", "code": "rate_limit_exceeded"}}',
     ("Rate limit", "rate_limit_exceeded")),
    (b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
     ("Overloaded", "overloaded_error")),
    (b'{"error": "model \\"llama9\\" not found"}', ('model "llama9" not found', None)),
    (b'{"detail": "Not Found"}', ("Not Found", None)),
    (b"upstream connect error", ("upstream connect error", None)),
    (b"", (None, None)),
])
def test_error_bodies_of_every_dialect_give_a_message(
    body: bytes, expected: tuple[str | None, str | None]
) -> None:
    """OpenAI, Anthropic, Ollama, FastAPI (vLLM) and plain-text error bodies."""
    assert error_details(body) == expected
