"""Reading and checking what an HTTP client sends, with 4xx answers that say what to fix.

Every refusal is a :class:`RequestRejected` carrying the status and a message naming what was
expected and what arrived, e.g. ``422 'input' must be an object with keys ['topic'], got str:
'parrot'``. Nothing here starts a run: a request is refused before it costs a slot.

>>> check_config({"tags": ["a"], "metadata": {"user": "u1"}})
{'tags': ['a'], 'metadata': {'user': 'u1'}}
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import attrs
import trio

from rillet.runtime.errors import ClientGone, RequestRejected, WireFormatError
from rillet.runtime.events.filters import FILTER_KEYS
from rillet.runtime.wire.checks import MAX_NESTING
from rillet.runtime.wire.sse import JSON, MSGPACK, decode_body

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

# What a client may set over HTTP; ``callbacks`` cannot cross the wire and is refused.
CONFIG_KEYS: Final = ("bound", "configurable", "max_concurrency", "metadata", "recursion_limit",
                      "run_id", "run_name", "tags")
_MAX_BOUND: Final = 1024


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


def check_config(config: Any, where: str = "config") -> dict[str, Any]:
    """Check a config sent over HTTP: an object with known keys of the right types.

    Raises:
        RequestRejected: 422, naming the key, what it must be and what arrived.
    """
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise RequestRejected(422, "InvalidConfig",
                              f"{where!r} must be an object, got {_shown(config)}")
    unknown = _keys({key: None for key in config if key not in CONFIG_KEYS})
    if unknown:
        raise RequestRejected(422, "InvalidConfig",
                              f"{where!r} has keys {unknown} that are not accepted over HTTP; "
                              f"expected some of {list(CONFIG_KEYS)}")
    rules: dict[str, tuple[Callable[[Any], bool], str]] = {
        "tags": (lambda v: isinstance(v, list) and all(isinstance(t, str) for t in v),
                 "a list of strings"),
        "metadata": (lambda v: isinstance(v, dict), "an object"),
        "configurable": (lambda v: isinstance(v, dict), "an object"),
        "run_name": (lambda v: isinstance(v, str) and 0 < len(v) <= 200, "a non-empty string"),
        "run_id": (lambda v: isinstance(v, str) and 0 < len(v) <= 128, "a string (<= 128 chars)"),
        "max_concurrency": (lambda v: type(v) is int and v >= 1, "an integer >= 1"),
        "recursion_limit": (lambda v: type(v) is int and v >= 1, "an integer >= 1"),
        "bound": (lambda v: type(v) is int and 0 <= v <= _MAX_BOUND,
                  f"an integer from 0 to {_MAX_BOUND}"),
    }
    for key, value in config.items():
        ok, expected = rules[key]
        if not ok(value):
            raise RequestRejected(422, "InvalidConfig",
                                  f"{where}[{key!r}] must be {expected}, got {_shown(value)}")
    return dict(config)


def input_schema(runnable: Any) -> dict[str, Any]:
    """A JSON schema of what ``runnable`` accepts, as far as it can tell (``{}``: anything).

    Looks through bindings and sequences to the first step; a prompt accepts an object with its
    variables (a one-variable prompt also accepts the bare value).
    """
    current = runnable
    for _ in range(32):  # bindings and sequences nest; a cycle would be a bug elsewhere
        own = getattr(current, "get_input_jsonschema", None)
        if callable(own):
            schema = own()
            return dict(schema) if isinstance(schema, Mapping) else {}
        variables = getattr(current, "input_variables", None)
        if isinstance(variables, list) and all(isinstance(v, str) for v in variables):
            obj = {"type": "object", "properties": {v: {"title": v} for v in variables},
                   "required": list(variables)}
            if len(variables) == 1:
                return {"anyOf": [obj, {"not": {"type": "object"}}]}
            return obj
        inner = getattr(current, "first", None) or getattr(current, "bound", None)
        if inner is None:
            break
        current = inner
    return {}


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
    configs: list[dict[str, Any]]
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
