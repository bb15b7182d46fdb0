"""The command line at its edges, run as the installed ``rillet`` script in a subprocess:
missing extras, one loader for every command, closed pipes, one-line errors, filter flags."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_serving_cli import tail_events

RILLET = str(Path(sys.executable).with_name("rillet"))  # the console script, not `python -m`

MYAPP = '''
from rillet.nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser
from rillet.graphs import RunnableGenerator

joke = (ChatPromptTemplate.from_template("tell me a joke about {topic}")
        | ScriptedChatModel(responses=["Why did the parrot cross the road"])
        | StrOutputParser())
chains = {"joke": joke}

async def _lines(inputs):
    async for _ in inputs:
        for i in range(200_000):
            yield f"line {i}\\n"

many = RunnableGenerator(_lines)
'''


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "myapp.py").write_text(MYAPP)
    return tmp_path


def without(modules: list[str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI with ``modules`` unimportable, as after a plain ``pip install rillet``."""
    hide = "; ".join(f"sys.modules[{name!r}] = None" for name in modules)
    code = (f"import sys; {hide}; from rillet.runtime.cli.main import main; "
            f"sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


@pytest.mark.parametrize(("hidden", "args", "line"), [
    (["starlette", "hypercorn"], ["serve", "myapp:chains", "--port", "0"],
     "rillet: error: rillet serve needs the serve extra: pip install 'rillet[serve]'"),
    (["coredis"], ["serve", "myapp:chains", "--port", "0", "--redis", "redis://127.0.0.1:1/0"],
     "rillet: error: rillet serve --redis needs the redis extra: pip install 'rillet[redis]'"),
    (["coredis"], ["worker", "myapp:chains", "--redis", "redis://127.0.0.1:1/0"],
     "rillet: error: rillet worker needs the redis extra: pip install 'rillet[redis]'"),
], ids=["serve", "serve-redis", "worker"])
def test_a_missing_extra_is_one_line_naming_it(
    app_dir: Path, hidden: list[str], args: list[str], line: str
) -> None:
    """After a plain install the command says which extra to install, once, and exits 1."""
    done = without(hidden, *args, cwd=app_dir)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [line]


@pytest.mark.parametrize("command", [
    ["run", "{}:missing", "--input", "1"],
    ["draw", "{}:missing"],
    ["serve", "{}:missing", "--port", "0"],
    ["worker", "{}:missing", "--redis", "redis://127.0.0.1:1/0"],
], ids=["run", "draw", "serve", "worker"])
@pytest.mark.parametrize("module", ["myapp", "myapp.py"])
def test_every_command_loads_targets_from_the_working_directory(
    app_dir: Path, command: list[str], module: str
) -> None:
    """module:attr and file.py:attr, cwd on the path: every command imports myapp the same way
    (the error is about the attribute, so the module itself was found)."""
    args = [arg.format(module) for arg in command]
    done = subprocess.run([RILLET, *args], capture_output=True, text=True, timeout=60,
                          cwd=app_dir)
    assert done.returncode == 2, done.stderr
    assert "'missing' not found; it has [" in done.stderr and "'chains'" in done.stderr
    assert "Traceback" not in done.stderr


def test_piping_into_head_exits_quietly(app_dir: Path) -> None:
    """`rillet run ... | head` and `rillet demo | head -c 20`: no BrokenPipeError traceback."""
    for args in (["run", "myapp:many", "--input", "0"], ["demo"]):
        process = subprocess.Popen([RILLET, *args], cwd=app_dir, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        assert process.stdout is not None and process.stderr is not None
        assert len(process.stdout.read(20)) == 20
        process.stdout.close()  # what `head` does when it has enough
        err = process.stderr.read().decode()
        assert process.wait(timeout=60) == 141, err  # 128 + SIGPIPE, as the shell reports
        assert err == ""


def test_errors_are_one_line_with_a_debug_switch(app_dir: Path) -> None:
    """A provider that is down: one line and exit 1; --debug or RILLET_DEBUG=1 add the
    traceback."""
    env = {**os.environ, "OLLAMA_BASE_URL": f"http://127.0.0.1:{closed_port()}/v1"}
    args = [RILLET, "demo", "--model", "ollama:llama3.2", "--delay", "0"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("rillet: error: ProviderConnectionError: ")
    assert line.endswith("(--debug shows the traceback)")
    for extra_args, extra_env in (["--debug"], {}), ([], {"RILLET_DEBUG": "1"}):
        debug = subprocess.run(args + extra_args, capture_output=True, text=True, timeout=60,
                               env={**env, **extra_env})
        assert debug.returncode == 1
        assert "Traceback (most recent call last)" in debug.stderr


async def test_filter_flags_take_comma_lists() -> None:
    """`--include-types chat_model,parser` keeps both kinds (and a repeated flag adds more)."""
    code, out = await tail_events([RILLET], "--count", "4", "--json", "--include-types",
                                  "chat_model,parser", "--exclude-names", "nobody,nothing")
    names = [line.split('"event": "')[1].split('"')[0] for line in out.splitlines()]
    assert code == 0 and len(names) == 4
    assert {name.split("_")[1] for name in names} <= {"chat", "parser"}
    assert "on_chat_model_start" in names


def test_filter_flags_have_help_and_reject_empty_lists() -> None:
    """Every filter flag is documented in --help; an empty list is a usage error."""
    help_text = subprocess.run([RILLET, "events", "--help"], capture_output=True, text=True,
                               timeout=60).stdout
    for flag in ("--include-names", "--include-types", "--include-tags", "--exclude-names",
                 "--exclude-types", "--exclude-tags"):
        assert flag in help_text
    assert "comma-separatedorrepeated" in "".join(help_text.split())
    done = subprocess.run([RILLET, "events", "http://127.0.0.1:1", "--include-types", ","],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "expected a name or a comma-separated list" in done.stderr
