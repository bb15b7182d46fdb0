"""The ``rillet`` command line.

``rillet demo`` streams a ``prompt | model | parser`` chain to the terminal token by token on
the embedded scripted model (no key, no network).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

DEMO_STORY = (
    "Once upon a time, a small stream learned to carry every word the moment it was spoken, "
    "so nobody downstream ever had to wait for the whole sentence. It never grew a lake: "
    "when the sea was busy, it simply slowed down."
)


def _demo(args: argparse.Namespace) -> int:
    from nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser

    prompt = ChatPromptTemplate.from_template("Tell me a short story about {topic}.")
    model = ScriptedChatModel(responses=[DEMO_STORY], delay=args.delay)
    chain = prompt | model | StrOutputParser()
    print(f"$ chain = prompt | ScriptedChatModel | StrOutputParser; chain.stream({{'topic': {args.topic!r}}})")
    for token in chain.stream({"topic": args.topic}):
        sys.stdout.write(token)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rillet", description="Stream LLM pipelines as bounded actors on trio."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="stream a prompt | model | parser chain (no key needed)")
    demo.add_argument("--topic", default="a river")
    demo.add_argument("--delay", type=float, default=0.03, help="seconds between tokens")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
