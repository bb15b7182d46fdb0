"""Composition: what ``|`` turns operands into, what each kind of function receives, config
injection, and the ``chain`` decorator."""

from __future__ import annotations

import json
import operator
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import pytest
import trio
import trio.testing

from rillet.graphs import (
    Runnable,
    RunnableGenerator,
    RunnableLambda,
    RunnableParallel,
    RunnableSequence,
    chain,
    coerce_to_runnable,
)
from rillet.nodes import AIMessageChunk, ScriptedChatModel, StrOutputParser


async def _pieces(_: Any) -> AsyncGenerator[str, None]:
    """Streams three text chunks, one a second (under the autojump clock)."""
    for piece in ["ab", "cd", "ef"]:
        await trio.sleep(1)
        yield piece


def _upstream() -> Runnable[Any, str]:
    return RunnableLambda(_pieces)


# -- what operands become -----------------------------------------------------------------------


def test_dict_becomes_a_parallel_with_coerced_values() -> None:
    """A dict operand becomes a RunnableParallel whose values are coerced (a runnable value
    stays that very runnable)."""
    same = RunnableLambda(lambda x: x, name="same")
    composed = RunnableLambda(lambda x: x) | {"n": lambda x: x + 1, "same": same}
    assert isinstance(composed, RunnableSequence)
    parallel = composed.steps[1]
    assert isinstance(parallel, RunnableParallel)
    assert isinstance(parallel.steps["n"], RunnableLambda)
    assert parallel.steps["same"] is same
    assert composed.invoke(1) == {"n": 2, "same": 1}


def test_coerce_keeps_runnables_and_wraps_callables() -> None:
    """A runnable stays itself; generator functions become RunnableGenerator, other callables
    (lambdas, itemgetter) RunnableLambda."""
    runnable = RunnableLambda(len)

    def gen(chunks: Iterator[Any]) -> Iterator[Any]:
        yield from chunks

    async def agen(chunks: AsyncIterator[Any]) -> AsyncGenerator[Any, None]:
        async for chunk in chunks:
            yield chunk

    assert coerce_to_runnable(runnable) is runnable
    assert type(coerce_to_runnable(gen)) is RunnableGenerator
    assert type(coerce_to_runnable(agen)) is RunnableGenerator
    assert type(coerce_to_runnable(lambda x: x)) is RunnableLambda
    assert type(coerce_to_runnable(operator.itemgetter("a"))) is RunnableLambda


@pytest.mark.parametrize("operand", [5, "text", None, [1, 2], 2.5])
def test_non_coercible_operands_are_a_type_error(operand: Any) -> None:
    """Composing with something that is not a runnable, callable or dict is a TypeError naming
    the operand's type, on either side of ``|``."""
    runnable = RunnableLambda(len)
    expected = rf"expected a Runnable, a callable or a dict to compose, got {type(operand).__name__}"
    with pytest.raises(TypeError, match=expected):
        runnable | operand
    with pytest.raises(TypeError, match=expected):
        operand | runnable


def test_dict_with_a_non_coercible_value_is_a_type_error() -> None:
    """A dict operand's values are coerced too, so a bad value fails at composition time."""
    with pytest.raises(TypeError, match="got int: 5"):
        RunnableLambda(len) | {"a": len, "b": 5}


def test_reversed_pipe_with_a_dict_and_a_lambda() -> None:
    """``{...} | runnable`` and ``lambda | runnable`` build sequences starting with the coerced
    operand."""
    total = RunnableLambda(lambda d: d["a"] + d["b"])
    from_dict = {"a": lambda x: x * 2, "b": lambda x: x * 3} | total
    assert isinstance(from_dict, RunnableSequence)
    assert isinstance(from_dict.first, RunnableParallel)
    assert from_dict.invoke(1) == 5

    from_lambda = (lambda x: x + 10) | RunnableLambda(lambda x: x * 2)
    assert isinstance(from_lambda, RunnableSequence)
    assert isinstance(from_lambda.first, RunnableLambda)
    assert from_lambda.invoke(1) == 22


def test_sequences_flatten_and_need_two_steps() -> None:
    """``(a | b) | (c | d)`` has four steps; a one-step sequence is a ValueError."""
    a, b, c, d = (RunnableLambda(lambda x, k=k: x + k) for k in "abcd")
    composed = (a | b) | (c | d)
    assert composed.steps == [a, b, c, d]  # type: ignore[attr-defined]
    assert composed.invoke("") == "abcd"
    assert (a | b).pipe(c, d).invoke("") == "abcd"
    with pytest.raises(ValueError, match="at least 2 steps, got 1"):
        RunnableSequence(a)


def test_default_names() -> None:
    """Lambdas are named RunnableLambda, functions by ``__name__``, parallels by their keys."""

    def shout(text: str) -> str:
        return text.upper()

    def tokens(chunks: Iterator[str]) -> Iterator[str]:
        yield from chunks

    assert RunnableLambda(lambda x: x).get_name() == "RunnableLambda"
    assert RunnableLambda(shout).get_name() == "shout"
    assert RunnableLambda(shout, name="loud").get_name() == "loud"
    assert coerce_to_runnable(tokens).get_name() == "tokens"
    assert RunnableParallel(joke=shout, poem=shout).get_name() == "RunnableParallel<joke,poem>"
    assert (RunnableLambda(shout) | shout).get_name() == "RunnableSequence"


# -- what functions receive -----------------------------------------------------------------------


async def test_plain_function_receives_the_whole_input(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A plain function after a streaming step is called once with the chunks added up."""
    calls: list[str] = []

    def record(text: str) -> str:
        calls.append(text)
        return text.upper()

    assert [c async for c in (_upstream() | record).astream(None)] == ["ABCDEF"]
    assert calls == ["abcdef"]


async def test_async_function_receives_the_whole_input(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An async function is awaited once, after the whole input arrived."""
    calls: list[tuple[float, str]] = []

    async def record(text: str) -> int:
        calls.append((trio.current_time(), text))
        return len(text)

    assert await (_upstream() | record).ainvoke(None) == 6
    assert calls == [(3.0, "abcdef")]


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_piped_generator_function_receives_the_input_stream(flavour: str) -> None:
    """A (sync or async) generator function piped after a streaming step receives the chunks
    one by one and streams its outputs while the upstream is still producing: here the
    upstream sends its second chunk only after the consumer got the first output."""
    received: list[str] = []
    first_output_seen = trio.Event()

    async def gated(_: Any) -> AsyncGenerator[str, None]:
        yield "ab"
        await first_output_seen.wait()
        yield "cd"
        yield "ef"

    def sync_upper(chunks: Iterator[str]) -> Iterator[str]:
        for chunk in chunks:
            received.append(chunk)
            yield chunk.upper()

    async def async_upper(chunks: AsyncIterator[str]) -> AsyncGenerator[str, None]:
        async for chunk in chunks:
            received.append(chunk)
            yield chunk.upper()

    composed = RunnableLambda(gated) | (sync_upper if flavour == "sync" else async_upper)
    outputs: list[str] = []
    # No autojump clock here: it would jump to the deadline while a worker thread runs.
    with trio.fail_after(10):  # a generator that waited for the whole input would hang here
        async for chunk in composed.astream(None):
            outputs.append(chunk)
            first_output_seen.set()
    assert received == ["ab", "cd", "ef"]
    assert outputs == ["AB", "CD", "EF"]


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_generator_function_in_runnable_lambda_receives_the_whole_input(
    autojump_clock: trio.testing.MockClock, flavour: str
) -> None:
    """``RunnableLambda(generator function)`` is called once with the whole input and streams
    its yields; ``ainvoke`` adds them up."""
    calls: list[str] = []

    def sync_letters(text: str) -> Iterator[str]:
        calls.append(text)
        yield from text

    async def async_letters(text: str) -> AsyncGenerator[str, None]:
        calls.append(text)
        for letter in text:
            yield letter

    lam = RunnableLambda(sync_letters if flavour == "sync" else async_letters)
    assert [c async for c in (_upstream() | lam).astream(None)] == list("abcdef")
    assert calls == ["abcdef"]
    assert await lam.ainvoke("xyz") == "xyz"


async def test_callable_object_with_async_call_is_awaited() -> None:
    """An object whose ``__call__`` is ``async def`` is awaited like an async function (and
    ``functools.partial`` of an async function too)."""
    import functools

    class AddOne:
        async def __call__(self, x: int) -> int:
            await trio.lowlevel.checkpoint()
            return x + 1

    async def add(x: int, y: int) -> int:
        return x + y

    assert await RunnableLambda(functools.partial(add, y=10)).ainvoke(1) == 11
    assert await RunnableLambda(AddOne()).ainvoke(1) == 2
    assert await (RunnableLambda(lambda x: x * 2) | AddOne()).ainvoke(1) == 3


async def test_function_returning_a_runnable_streams_it() -> None:
    """A function that returns a runnable has that runnable streamed on the same input."""
    model = ScriptedChatModel(responses=["one two three"])
    router = RunnableLambda(lambda text: model | StrOutputParser())
    assert [c async for c in router.astream("hi")] == ["one", " two", " three"]
    assert await router.ainvoke("hi") == "one two three"


def test_generator_function_outputs_add_up_on_invoke() -> None:
    """Invoking a generator function adds its yields (1 + 2 + 3), or keeps the last dict."""

    def numbers(_: Any) -> Iterator[int]:
        yield from [1, 2, 3]

    def dicts(_: Any) -> Iterator[dict[str, int]]:
        yield {"a": 1}
        yield {"a": 2}

    assert RunnableLambda(numbers).invoke(None) == 6
    assert RunnableLambda(dicts).invoke(None) == {"a": 2}


# -- config injection -----------------------------------------------------------------------------


def test_config_parameter_receives_tags_metadata_and_configurable() -> None:
    """A ``config`` parameter gets the run's tags and metadata; unknown keys are moved into
    ``configurable``."""
    seen: list[dict[str, Any]] = []

    def show(x: int, config: dict[str, Any]) -> int:
        seen.append(config)
        return x

    RunnableLambda(show).invoke(1, {"tags": ["t"], "metadata": {"m": 1}, "foo": "bar"})
    assert seen[0]["tags"] == ["t"]
    assert seen[0]["metadata"] == {"m": 1}
    assert seen[0]["configurable"] == {"foo": "bar"}


async def test_config_reaches_async_and_generator_functions() -> None:
    """Async functions and generator functions over the stream can ask for ``config`` too."""

    async def tags_of(x: int, config: dict[str, Any]) -> list[str]:
        return list(config["tags"])

    async def tag_each(chunks: AsyncIterator[str], config: dict[str, Any]) -> AsyncGenerator[str, None]:
        async for chunk in chunks:
            yield f"{chunk}:{config['metadata']['who']}"

    assert await RunnableLambda(tags_of).ainvoke(1, {"tags": ["z"]}) == ["z"]
    tagged = RunnableLambda(lambda x: x) | tag_each
    assert await tagged.ainvoke("a", {"metadata": {"who": "me"}}) == "a:me"


def test_functions_without_a_config_parameter_get_only_the_input() -> None:
    """Only a parameter named ``config`` is injected; other functions are called with one
    argument."""

    def one_arg(x: int, *args: Any) -> int:
        assert args == ()
        return x + 1

    assert RunnableLambda(one_arg).invoke(1) == 2


# -- the chain decorator ----------------------------------------------------------------------------


def test_chain_decorator_makes_a_named_runnable() -> None:
    """``@chain`` turns a function into a runnable named after it, composable with ``|``."""

    @chain
    def shout(text: str) -> str:
        return text.upper() + "!"

    assert isinstance(shout, Runnable)
    assert shout.get_name() == "shout"
    assert shout.invoke("hi") == "HI!"
    assert (shout | (lambda s: s * 2)).invoke("a") == "A!A!"


def test_chain_decorated_function_can_call_other_runnables() -> None:
    """A ``@chain`` function may invoke runnables itself and return the result."""
    double = RunnableLambda(lambda x: x * 2)

    @chain
    def twice_then_one(x: int) -> int:
        return int(double.invoke(double.invoke(x))) + 1

    assert twice_then_one.invoke(3) == 13


# -- the guide's streaming country-names pattern -------------------------------------------------

COUNTRIES = {
    "countries": [
        {"name": "France", "population": 67},
        {"name": "Spain", "population": 47},
        {"name": "Japan", "population": 125},
    ]
}


async def _json_snapshots(chunks: AsyncIterator[AIMessageChunk]) -> AsyncGenerator[Any, None]:
    """A JsonOutputParser stand-in: the value parsed so far, after each chunk that changes it
    (closing the open strings, objects and lists of the text so far)."""
    text, last = "", None
    async for chunk in chunks:
        text += chunk.text
        value = _parse_partial(text)
        if value is not None and value != last:
            last = value
            yield value


def _parse_partial(text: str) -> Any:
    closers, in_string, escaped = [], False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            closers.append("}" if char == "{" else "]")
        elif char in "}]":
            closers.pop()
    candidate = text + ('"' if in_string else "")
    for cut in range(len(candidate), 0, -1):
        try:
            return json.loads(candidate[:cut].rstrip(",: ") + "".join(reversed(closers)))
        except json.JSONDecodeError:
            continue
    return None


def _extract_country_names(inputs: Any) -> list[str]:
    """The guide's non-streaming step: a plain function of the whole (final) parsed value."""
    if not isinstance(inputs, dict) or not isinstance(inputs.get("countries"), list):
        return []
    return [c["name"] for c in inputs["countries"] if isinstance(c, dict) and c.get("name")]


async def _extract_country_names_streaming(
    input_stream: AsyncIterator[Any],
) -> AsyncGenerator[str, None]:
    """The guide's streaming step: a generator over the snapshots yielding each new name."""
    country_names_so_far: set[str] = set()
    async for value in input_stream:
        if not isinstance(value, dict) or not isinstance(value.get("countries"), list):
            continue
        for country in value["countries"]:
            name = country.get("name") if isinstance(country, dict) else None
            if not name:
                continue
            if name not in country_names_so_far:
                yield name
                country_names_so_far.add(name)


def _country_model(delay: float = 0.0) -> ScriptedChatModel:
    return ScriptedChatModel(responses=[json.dumps(COUNTRIES)], delay=delay)


async def test_streaming_generator_yields_country_names_while_the_model_streams(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``model | snapshot parser | generator``: names come out one by one, the first long
    before the model has finished."""
    names: list[tuple[str, float]] = []
    pipeline = _country_model(delay=1.0) | _json_snapshots | _extract_country_names_streaming
    async for name in pipeline.astream("list three countries"):
        names.append((name, trio.current_time()))
    finished = trio.current_time()
    assert [name for name, _ in names] == ["France", "Spain", "Japan"]
    assert names[0][1] < finished / 2


async def test_plain_extract_function_sees_only_the_final_value(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``model | snapshot parser | plain function``: the function runs once, on the last
    snapshot, and streams a single chunk."""
    calls: list[Any] = []

    def extract(inputs: Any) -> list[str]:
        calls.append(inputs)
        return _extract_country_names(inputs)

    chunks = [c async for c in (_country_model() | _json_snapshots | extract).astream("go")]
    assert chunks == [["France", "Spain", "Japan"]]
    assert calls == [COUNTRIES]


async def test_snapshot_parser_stand_in_emits_growing_values() -> None:
    """The stand-in parser really streams partial values (so the tests above are meaningful)."""
    snapshots = [s async for s in (_country_model() | _json_snapshots).astream("go")]
    assert len(snapshots) > 5
    assert snapshots[0] == {}
    assert snapshots[-1] == COUNTRIES
    assert {"countries": [{"name": "France"}]} in snapshots
