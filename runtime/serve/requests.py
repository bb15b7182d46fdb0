"""Reading and checking what an HTTP client sends, with 4xx answers that say what to fix.

Every refusal is a :class:`RequestRejected` carrying the status and a message naming what was
expected and what arrived, e.g. ``422 'input' must be an object with keys ['topic'], got str:
'parrot'``. Nothing here starts a run: a request is refused before it costs a slot.

>>> check_config({"tags": ["a"], "metadata": {"user": "u1"}})
RunConfig(tags=('a',), metadata={'user': 'u1'})
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from rillet.runtime.engine.config import WIRE_CONFIG_KEYS, RunConfig
from rillet.runtime.errors import ClientGone, ConfigError, RequestRejected, WireFormatError
from rillet.runtime.events.filters import FILTER_KEYS
from rillet.runtime.wire.checks import MAX_NESTING
from rillet.runtime.wire.sse import JSON, MSGPACK, decode_body

if TYPE_CHECKING:
    from rillet.runtime.engine.protocols import Launchable

__all__ = [
    "CONFIG_KEYS",
    "ClientGone",
    "RequestRejected",
    "RunRequest",
    "check_config",
    "check_input",
    "decode_request",
    "input_schema",
    "parse_request",
    "read_body",
]

# What a client may set over HTTP (the run config's keys but ``callbacks``, a process's bus).
CONFIG_KEYS: Final = WIRE_CONFIG_KEYS


def _shown(value: Any) -> str:
    try:
        text = reprlib.repr(value)
    except (ValueError, RecursionError):  # e.g. an int too long to print
        text = f"<a {type(value).__name__} too large to show>"
    return f"{type(value).__name__}: {text:.80}"


def _keys(mapping: Mapping[Any, Any]) -> list[str]:
    """A mapping's keys for a message, sorted (keys of mixed types cannot be sorted as such)."""
    return sorted(key if isinstance(key, str) else repr(key) for key in mapping)


async def read_body(
    receive: Callable[[], Awaitable[Mapping[str, Any]]],
    headers: Mapping[str, str],
    limit: int,
    timeout: float = math.inf,
) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes, or
    with 408 when it has not all arrived ``timeout`` seconds after the headers.

    Raises:
        RequestRejected: 413 (too large), 408 (too slow) or 400 (a bad Content-Length).
        ClientGone: the client left mid-body.
    """
    declared = headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise RequestRejected(400, "BadRequest",
                                  f"Content-Length must be a number of bytes, got {declared:.40}")
        if len(declared) > 18 or int(declared) > limit:
            raise RequestRejected(413, "PayloadTooLarge",
                                  f"request body is {declared:.40} bytes; this server accepts at "
                                  f"most {limit} (serve --max-body-bytes)")
    parts: list[bytes] = []
    size = 0
    with trio.move_on_after(timeout):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            body = message.get("body", b"")
            size += len(body)
            if size > limit:  # chunked bodies have no Content-Length: count as they come
                raise RequestRejected(413, "PayloadTooLarge",
                                      f"request body exceeds {limit} bytes "
                                      f"(serve --max-body-bytes)")
            parts.append(body)
            if not message.get("more_body", False):
                return b"".join(parts)
    raise RequestRejected(408, "RequestTimeout",
                          f"the request body did not arrive within {timeout:g} s ({size} bytes "
                          f"came; serve --body-timeout)")


def decode_request(body: bytes, content_type: str | None) -> Any:
    """Decode a JSON or msgpack body (by Content-Type; JSON when none is given), refusing one
    that breaks the wire's checks (:mod:`rillet.runtime.wire.checks`: at most
    ``MAX_NESTING`` levels deep, string keys, printable integers, valid Unicode)."""
    media = (content_type or JSON).partition(";")[0].strip().lower()
    if media not in (JSON, MSGPACK):
        raise RequestRejected(415, "UnsupportedMediaType",
                              f"Content-Type must be {JSON} or {MSGPACK}, got {media!r:.80}")
    if not body:
        raise RequestRejected(400, "BadRequest",
                              'request body is empty; expected {"input": ..., "config": {...}}')
    try:
        return decode_body(body, media, max_nesting=MAX_NESTING)
    except WireFormatError as exc:
        raise RequestRejected(400, "BadRequest",
                              f"request body could not be decoded: {exc}") from None


def check_config(config: Any, where: str = "config") -> RunConfig:
    """Check a config sent over HTTP with the run config's schema (as ``config=`` in Python:
    the same keys and messages; unknown keys and ``callbacks`` are refused here).

    Raises:
        RequestRejected: 422, naming the key, what it must be and what arrived.
    """
    try:
        return RunConfig.from_dict(config, where=where, remote=True)
    except ConfigError as error:
        raise RequestRejected(422, "InvalidConfig", str(error)) from None


def input_schema(runnable: Launchable) -> dict[str, Any]:
    """A JSON schema of what ``runnable`` accepts (``{}``: anything): its own
    ``get_input_jsonschema()`` (a sequence answers for its first step, a prompt with its
    variables)."""
    return dict(runnable.get_input_jsonschema())


def check_input(schema: Mapping[str, Any], value: Any, where: str = "input") -> None:
    """Check ``value`` against the subset of JSON schema that :func:`input_schema` writes.

    Raises:
        RequestRejected: 422 naming the keys expected and what arrived.
    """
    problem = _problem(schema, value)
    if problem is not None:
        raise RequestRejected(422, "InvalidInput", f"{where!r} {problem}")


def _problem(schema: Mapping[str, Any], value: Any) -> str | None:
    if "anyOf" in schema:
        problems = [_problem(option, value) for option in schema["anyOf"]]
        return None if None in problems else problems[0]
    if "not" in schema:
        return "must not be an object" if _problem(schema["not"], value) is None else None
    if schema.get("type") == "object":
        required = schema.get("required", [])
        if not isinstance(value, dict):
            return f"must be an object with keys {required}, got {_shown(value)}"
        missing = [key for key in required if key not in value]
        if missing:
            return f"is missing keys {missing}; expected keys {required}, got {_keys(value)}"
    return None


# What each endpoint's body may hold; anything else (a misspelt filter such as "include_type")
# is refused rather than ignored. LangServe clients send an empty "kwargs".
_FIELDS: Final = {
    "invoke": ("input", "config", "kwargs"),
    "stream": ("input", "config", "kwargs"),
    "batch": ("inputs", "config", "kwargs"),
    "stream_events": ("input", "config", "kwargs", "version", *FILTER_KEYS),
    "stream_log": ("input", "config", "kwargs", "diff", "with_streamed_output_list",
                   *FILTER_KEYS),
}


def _check_fields(endpoint: str, payload: dict[str, Any]) -> None:
    allowed = _FIELDS.get(endpoint, ())
    unknown = sorted(key for key in payload if key not in allowed)
    if unknown:
        raise RequestRejected(422, "InvalidRequest",
                              f"unknown field {unknown[0]!r} in the {endpoint} request body; "
                              f"expected some of {list(allowed)}")
    if payload.get("kwargs") not in (None, {}):
        raise RequestRejected(422, "InvalidRequest",
                              f"'kwargs' is not supported; got {_shown(payload['kwargs'])}")


@attrs.frozen
class RunRequest:
    """A checked request: the input (or inputs for ``/batch``), config(s) and options."""

    inputs: list[Any]
    configs: list[RunConfig]
    options: dict[str, Any]


def parse_request(endpoint: str, payload: Any, schema: Mapping[str, Any]) -> RunRequest:
    """Check a decoded body for ``endpoint`` (``invoke``, ``batch``, ``stream``,
    ``stream_events``, ``stream_log``) against the runnable's input ``schema``."""
    if not isinstance(payload, dict):
        raise RequestRejected(422, "InvalidRequest",
                              f'request body must be an object like {{"input": ..., "config": '
                              f'{{...}}}}, got {_shown(payload)}')
    options: dict[str, Any] = {}
    if endpoint == "batch":
        inputs = payload.get("inputs")
        if not isinstance(inputs, list):
            raise RequestRejected(422, "InvalidRequest",
                                  f"'inputs' must be a list, got {_shown(inputs)}")
        _check_fields(endpoint, payload)
        config = payload.get("config")
        if isinstance(config, list):
            if len(config) != len(inputs):
                raise RequestRejected(422, "InvalidConfig",
                                      f"got {len(config)} configs for {len(inputs)} inputs; "
                                      f"send one config object or one per input")
            configs = [check_config(c, f"config[{i}]") for i, c in enumerate(config)]
        else:
            configs = [check_config(config)] * len(inputs)
        for i, item in enumerate(inputs):
            check_input(schema, item, f"inputs[{i}]")
        return RunRequest(inputs, configs, options)
    if "input" not in payload:
        raise RequestRejected(422, "InvalidRequest",
                              f"request body must have an 'input' key, got keys {_keys(payload)}")
    _check_fields(endpoint, payload)
    check_input(schema, payload["input"])
    config = check_config(payload.get("config"))
    if endpoint in ("stream_events", "stream_log"):
        for key in FILTER_KEYS:
            names = payload.get(key)
            if names is not None and not (
                isinstance(names, list) and all(isinstance(n, str) for n in names)
            ):
                raise RequestRejected(422, "InvalidRequest",
                                      f"{key!r} must be a list of strings, got {_shown(names)}")
            options[key] = names
    if endpoint == "stream_events":
        version = payload.get("version", "v2")
        if version not in ("v1", "v2"):
            raise RequestRejected(422, "InvalidRequest",
                                  f"'version' must be 'v1' or 'v2', got {_shown(version)}")
        options["version"] = version
    if endpoint == "stream_log":
        for key in ("diff", "with_streamed_output_list"):
            flag = payload.get(key, True)
            if not isinstance(flag, bool):
                raise RequestRejected(422, "InvalidRequest",
                                      f"{key!r} must be true or false, got {_shown(flag)}")
            options[key] = flag
    return RunRequest([payload["input"]], [config], options)
