"""Every fenced Python and shell block of the README runs, and shows what it says it shows.

The conventions (markers in an HTML comment right before a fence, ``# -> value`` comments,
``$ command`` lines with expected output) are described in the README's "Development"
section. A block that needs a server gets one started here: ``rillet serve myapp:chains``,
Redis with a ``rillet worker``, or a loopback fake of a provider, and its addresses replace the
README's ``127.0.0.1:8000`` / ``redis.example:6379``.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent  # the test environment's bin/, first on PATH for shell blocks
SHELLS = ("bash", "sh", "console")
LANGUAGES = ("python", *SHELLS)
KNOWN_NEEDS = {"server", "redis", "openai", "anthropic"}
PROVIDER_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
                "OLLAMA_BASE_URL")
UNTIL_STOPPED = "until Ctrl-C"
_MARKER = re.compile(r"^<!--\s*([a-z-]+)(?::\s*(.*?))?\s*-->$")


@attrs.frozen
class Block:
    """One fenced block: its language, code, the line it starts on and its markers."""

    lang: str
    code: str
    line: int
    markers: dict[str, str]

    @property
    def needs(self) -> set[str]:
        return {n.strip() for n in self.markers.get("needs", "").split(",") if n.strip()}

    @property
    def id(self) -> str:
        return f"line{self.line}-{self.lang}"


def read_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text`` with the marker comments that directly precede them."""
    blocks: list[Block] = []
    lines = text.splitlines()
    markers: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        found = _MARKER.match(line.strip())
        if found:
            markers[found.group(1)] = found.group(2) or ""
            i += 1
            continue
        if line.startswith("```"):
            lang = line[3:].strip()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            blocks.append(Block(lang, "\n".join(lines[i + 1:end]) + "\n", i + 1, markers))
            markers, i = {}, end + 1
            continue
        if line.strip():
            markers = {}  # a marker belongs to the fence right after it
        i += 1
    return blocks


BLOCKS = [b for b in read_blocks(README.read_text()) if b.lang in LANGUAGES]
PYTHON = [b for b in BLOCKS if b.lang == "python" and "file" not in b.markers]
SHELL = [b for b in BLOCKS if b.lang in SHELLS]


def test_the_readme_has_blocks_and_every_marker_is_understood() -> None:
    """Markers are spelt right, not-run says why, needs names something the test can start."""
    assert len(PYTHON) >= 15 and len(SHELL) >= 6
    for block in BLOCKS:
        assert set(block.markers) <= {"continues", "file", "needs", "not-run", "effect",
                                      "readme-test"}, block
        assert block.needs <= KNOWN_NEEDS, block
        for skip in ("not-run", "readme-test"):  # readme-test: another test runs it (it says which)
            if skip in block.markers:
                assert len(block.markers[skip]) > 10, f"{block.id}: say why it does not run"
    assert any(b.markers.get("file") == "myapp.py" for b in BLOCKS)


# -- matching what the README shows ---------------------------------------------------------

def _pattern(text: str) -> re.Pattern[str]:
    """``…``/``...`` (and an id cut short, ``4a18…``) match anything; timings any timing;
    runs of spaces any spacing."""
    out = []
    for piece in re.split(r"([0-9a-f-]*…|\.\.\.|\d+\.\d{3}s|\s+)", text):
        if not piece:
            continue
        if piece.endswith("…") or piece == "...":
            out.append(".*?")
        elif re.fullmatch(r"\d+\.\d{3}s", piece):
            out.append(r"\d+\.\d+s")
        elif piece.isspace():
            out.append(r"\s+")
        else:
            out.append(re.escape(piece))
    return re.compile("".join(out), re.DOTALL)


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line-wise: a line that is just ``…`` stands for any number of lines."""
    expected = [line.rstrip() for line in expected]
    actual = [line.rstrip() for line in actual]
    while expected and not expected[-1]:
        expected.pop()
    while actual and not actual[-1]:
        actual.pop()

    @functools.cache
    def at(i: int, j: int) -> bool:
        if i == len(expected):
            return j == len(actual)
        if expected[i].strip() == "…":
            return any(at(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and bool(_pattern(expected[i].strip()).fullmatch(
            actual[j].strip())) and at(i + 1, j + 1)

    return at(0, 0)


def check_output(value: Any, expected: str) -> None:
    """``expr  # -> expected``: the value's repr, with the README's elisions."""
    assert _pattern(expected).fullmatch(repr(value)), f"{value!r} is not {expected}"


_OUTPUT_COMMENT = re.compile(r"^(\s*)(\S.*?)\s+# -> (.+)$")


def with_checks(code: str) -> str:
    """Turn each ``expr  # -> value`` line into a check of that expression."""
    lines = []
    for line in code.splitlines():
        found = _OUTPUT_COMMENT.match(line)
        if found:
            indent, expr, expected = found.groups()
            try:
                ast.parse(expr.strip(), mode="eval")
            except SyntaxError:
                pass
            else:
                line = f"{indent}__check__({expr}, {expected!r})"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _calls_main(code: str) -> bool:
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            names = [node.func, *node.args]
            if any(isinstance(n, ast.Name) and n.id == "main" for n in names):
                return True
    return False


def run_python(block: Block, code: str, namespace: dict[str, Any]) -> None:
    """Run one block: trio code with a top-level await under trio.run, then an uncalled
    ``async def main()``."""
    compiled = compile(with_checks(code), f"README.md:{block.line}", "exec",
                       flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if compiled.co_flags & inspect.CO_COROUTINE:
        async def top_level() -> None:
            await eval(compiled, namespace)

        trio.run(top_level)
    else:
        exec(compiled, namespace)
    main = namespace.get("main")
    if inspect.iscoroutinefunction(main) and not _calls_main(code):
        trio.run(main)


# -- what blocks need ----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's directory: the README's files (myapp.py) written into it."""
    path = tmp_path_factory.mktemp("readme")
    for block in BLOCKS:
        if "file" in block.markers:
            (path / block.markers["file"]).write_text(block.code)
    return path


def shell_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_ENV}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@attrs.define
class Service:
    """A started background process and what the README's addresses become."""

    process: subprocess.Popen[str]
    substitutions: dict[str, str]


def start(command: list[str], cwd: Path, ready: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(command, cwd=cwd, env=shell_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if ready in line:
            return process, line
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"{command} did not print {ready!r}")


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[Service]:
    """`rillet serve myapp:chains` on a free port, as the Serving section starts it."""
    process, line = start([str(BIN / "rillet"), "serve", "myapp:chains", "--port", "0"],
                          workdir, "serving on")
    url = line.split()[-1]
    port = url.rsplit(":", 1)[1]
    try:
        yield Service(process, {"http://127.0.0.1:8000": url,
                                "localhost:8000": f"127.0.0.1:{port}"})
    finally:
        stop(process)


@pytest.fixture(scope="module")
def redis(workdir: Path) -> Iterator[Service]:
    """A redis-server and one `rillet worker myapp:chains` serving from it."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    port = free_port()
    store = subprocess.Popen(["redis-server", "--port", str(port), "--save", "",
                              "--appendonly", "no", "--dir", str(workdir)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        worker, _ = start([str(BIN / "rillet"), "worker", "myapp:chains", "--redis", url],
                          workdir, "serving")
        try:
            yield Service(worker, {"redis.example:6379": f"127.0.0.1:{port}"})
        finally:
            stop(worker)
    finally:
        store.terminate()
        store.wait(timeout=15)


def _loopback() -> Any:
    spec = importlib.util.spec_from_file_location("readme_loopback",
                                                  ROOT / "tests" / "providers" / "loopback.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class _Answers:
    """What the fake provider answers, by request: embeddings, a tool call, or a short text."""

    def __init__(self, server: Any, loopback: Any) -> None:
        self.server, self.loopback = server, loopback

    def __bool__(self) -> bool:
        return True

    def popleft(self) -> Any:
        lb, exchange = self.loopback, self.server.exchanges[-1]
        body = exchange.json() if exchange.body else {}
        if exchange.path.endswith("/embeddings"):
            data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                    for i, _ in enumerate(body["input"])]
            return lb.json_reply(200, {"object": "list", "data": data, "model": body["model"]})
        if body.get("tools"):
            return lb.sse_reply(lb.openai_chunks(text=(), tool_calls=[
                ("call_abc123", "get_weather", ['{"city": ', '"Paris"}'])]))
        return lb.sse_reply(lb.openai_chunks(text=("Why", " did", " the", " parrot", " talk?")))


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """A loopback server speaking OpenAI's wire format, in a thread of its own."""
    loopback = _loopback()
    fake = loopback.LoopbackServer()
    fake.replies = _Answers(fake, loopback)
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(functools.partial(trio.serve_tcp, fake.handle, 0,
                                                              host="127.0.0.1"))
            fake.port = listeners[0].socket.getsockname()[1]
            state["cancel"], state["token"] = nursery.cancel_scope, trio.lowlevel.current_trio_token()
            ready.set()

    thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield fake.url
    finally:
        trio.from_thread.run_sync(state["cancel"].cancel, trio_token=state["token"])
        thread.join(10)


@pytest.fixture
def services(request: pytest.FixtureRequest, workdir: Path, monkeypatch: pytest.MonkeyPatch
             ) -> dict[str, str]:
    """Start what the block needs; returns the README address -> real address substitutions."""
    block: Block = request.param
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
    substitutions: dict[str, str] = {}
    if "server" in block.needs:
        substitutions.update(request.getfixturevalue("server").substitutions)
    if "redis" in block.needs:
        substitutions.update(request.getfixturevalue("redis").substitutions)
    if block.needs & {"openai", "anthropic"}:
        url = request.getfixturevalue("provider")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{url}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-readme-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-readme-test")
    return substitutions


def substituted(text: str, substitutions: dict[str, str]) -> str:
    for old, new in substitutions.items():
        text = text.replace(old, new)
    return text


def _chain(block: Block) -> list[Block]:
    """The block and the blocks it continues, first first."""
    index = PYTHON.index(block)
    chain = [block]
    while "continues" in chain[0].markers:
        index -= 1
        chain.insert(0, PYTHON[index])
    return chain


# -- the tests -----------------------------------------------------------------------------

@pytest.mark.parametrize("services", PYTHON, ids=[b.id for b in PYTHON], indirect=True)
def test_python_block_runs(services: dict[str, str], workdir: Path,
                           monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """The block runs in a fresh namespace (after the blocks it continues), in a directory
    holding the README's files, and its ``# -> value`` comments hold."""
    block: Block = request.node.callspec.params["services"]
    skip_if_not_run(block)
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(workdir))
    namespace: dict[str, Any] = {"__name__": "__readme__", "__check__": check_output}
    for part in _chain(block):
        run_python(part, substituted(part.code, services), namespace)


@attrs.frozen
class Command:
    line: str
    expected: list[str]

    @property
    def until_stopped(self) -> bool:
        return UNTIL_STOPPED in self.line


def read_console(code: str) -> list[Command]:
    """``$ command`` lines (``\\`` continues them) and the output lines after each."""
    commands: list[Command] = []
    lines = code.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            i += 1
            continue
        command = lines[i][2:]
        while command.endswith("\\"):  # bash joins the lines itself
            i += 1
            command = command + "\n" + lines[i]
        i += 1
        expected = []
        while i < len(lines) and not lines[i].startswith("$ "):
            expected.append(lines[i])
            i += 1
        commands.append(Command(command, expected))
    return commands


def run_command(command: Command, cwd: Path) -> None:
    """Run one console command; check its exit status and what it printed."""
    if not command.until_stopped:
        done = subprocess.run(["bash", "-c", command.line], cwd=cwd, env=shell_env(),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"$ {command.line}\n{done.stdout}\n{done.stderr}"
        lines = done.stdout.splitlines()
    else:
        # A command that runs until stopped: read until its output matches, then Ctrl-C.
        process = subprocess.Popen(["bash", "-c", f"exec {command.line}"], cwd=cwd,
                                   env=shell_env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        assert process.stdout is not None
        lines = []
        expected = [line for line in command.expected if line.strip() != "…"]
        deadline = time.monotonic() + 20
        try:
            while len(lines) < len(expected) and time.monotonic() < deadline:
                line = process.stdout.readline()
                if not line:
                    break
                lines.append(line.rstrip("\n"))
            time.sleep(0.2 if expected else 1.0)  # it keeps running: that is what it does
            assert process.poll() is None, f"$ {command.line} ended: {process.stderr.read()}"
        finally:
            stop(process)
        if command.expected and command.expected[-1].strip() != "…":
            command = Command(command.line, [*command.expected, "…"])
    if command.expected:
        assert matches(command.expected, lines), (
            f"$ {command.line}\nexpected:\n" + "\n".join(command.expected)
            + "\ngot:\n" + "\n".join(lines))


@pytest.mark.parametrize("services", SHELL, ids=[b.id for b in SHELL], indirect=True)
def test_shell_block_runs(services: dict[str, str], workdir: Path,
                          request: pytest.FixtureRequest) -> None:
    """console blocks: each ``$ command`` runs and prints what the README shows; bash/sh
    blocks run as scripts; ``effect`` blocks run their effect instead."""
    block: Block = request.node.callspec.params["services"]
    skip_if_not_run(block)
    if "effect" in block.markers:
        done = subprocess.run(["bash", "-c", block.markers["effect"]], cwd=workdir,
                              env=shell_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.strip(), done.stderr
        return
    if block.lang != "console":
        done = subprocess.run(["bash", "-e", "-c", substituted(block.code, services)],
                              cwd=workdir, env=shell_env(), capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        return
    commands = read_console(block.code)
    assert commands, f"{block.id}: a console block without a $ command"
    for command in commands:
        run_command(own_port(command, services), workdir)


def skip_if_not_run(block: Block) -> None:
    for marker in ("not-run", "readme-test"):
        if marker in block.markers:
            pytest.skip(block.markers[marker])


def own_port(command: Command, services: dict[str, str]) -> Command:
    """A command that starts its own server (``--port N``) gets a free port of its own, in its
    line and its output; every other command talks to the test's server."""
    subs = dict(services)
    found = re.search(r"--port (\d+)", command.line)
    if found and command.until_stopped:
        port, mine = found.group(1), free_port()
        subs = {f"--port {port}": f"--port {mine}", f"127.0.0.1:{port}": f"127.0.0.1:{mine}",
                **{k: v for k, v in subs.items() if port not in k}}
    return Command(substituted(command.line, subs),
                   [substituted(line, subs) for line in command.expected])


def test_the_quickstart_demo_runs_from_the_installed_script() -> None:
    """The quickstart's effect: the installed `rillet demo` streams the scripted story."""
    done = subprocess.run([str(BIN / "rillet"), "demo", "--delay", "0"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert "Once upon a time, a small stream" in done.stdout


def test_output_comments_are_checked() -> None:
    """``expr  # -> value`` fails the block when the value differs; other comments do not."""
    block = Block("python", "", 1, {})
    run_python(block, "x = [1, 2]\nx  # -> [1, 2]\nprint(x)  # a plain comment\n",
               {"__check__": check_output})
    with pytest.raises(AssertionError, match=r"\[1, 2\] is not \[1, 3\]"):
        run_python(block, "x = [1, 2]\nx  # -> [1, 3]\n", {"__check__": check_output})


def test_the_matcher_elides_as_the_readme_does() -> None:
    """`…` lines and ids, timings and spacing; anything else must be exact."""
    assert matches(['{"run_id": "4a18…"}'], ['{"run_id": "0f3c-9a"}'])
    assert matches(["a", "…", "z"], ["a", "b", "c", "z"]) and matches(["a", "…"], ["a"])
    assert matches(["   0.000s  start  chain"], ["   0.012s  start chain"])
    assert not matches(["Why did"], ["Why not"]) and not matches(["a"], ["a", "b"])
