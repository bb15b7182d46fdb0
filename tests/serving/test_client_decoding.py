"""Clients decode every standard type however little they imported: a process that imports only
RemoteRunnable or the scale-out client still gets messages and prompt values back as objects."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import trio
from serving_apps import joke

from rillet.nodes import AIMessageChunk, ChatPromptValue, HumanMessage
from rillet.runtime.engine.worker import Worker
from rillet.runtime.events.types import ChunkEmitted
from rillet.runtime.scaleout.redis_store import encode_event_bytes
from rillet.runtime.serve.server import open_server


def run_python(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_scaleout_decoder_needs_no_nodes_import() -> None:
    """Stored events holding a ChatPromptValue and an AIMessageChunk decode as those classes;
    importing the client did not import rillet.nodes (that happens on first sight)."""
    event = ChunkEmitted(run_id="r", name="m", kind="chat_model", seq=1, data={
        "chunk": AIMessageChunk(content="Hi"),
        "prompt": ChatPromptValue(messages=[HumanMessage(content="joke")])})
    out = run_python("""
        import sys
        from rillet.runtime.scaleout import ScaleoutClient
        from rillet.runtime.scaleout.redis_store import decode_event_bytes
        before = "rillet.nodes" in sys.modules
        event = decode_event_bytes(bytes.fromhex(sys.argv[1]))
        print(before, type(event.data["chunk"]).__name__, event.data["chunk"].content,
              type(event.data["prompt"]).__name__, event.data["prompt"].to_string())
    """, encode_event_bytes(event).hex())
    assert out.split() == ["False", "AIMessageChunk", "Hi", "ChatPromptValue", "Human:", "joke"]


async def test_remote_runnable_alone_yields_message_objects() -> None:
    """The README idiom ev["data"]["chunk"].content works in a client importing only
    RemoteRunnable."""
    async with Worker() as worker, open_server({"joke": joke}, worker=worker) as running:
        code = textwrap.dedent("""
            import sys, trio
            from rillet.graphs import RemoteRunnable

            async def main():
                remote = RemoteRunnable(sys.argv[1] + "/joke")
                async for ev in remote.astream_events({"topic": "x"}, version="v2"):
                    if ev["event"] == "on_chat_model_stream":
                        print(ev["data"]["chunk"].content, end="|")
                    if ev["event"] == "on_chat_model_start":
                        print(type(ev["data"]["input"]["messages"][0][0]).__name__, end="|")
            trio.run(main)
        """)
        done = await trio.run_process([sys.executable, "-c", code, running.url],
                                      capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode() == "HumanMessage|Why| did| the| parrot| cross| the| road|"
