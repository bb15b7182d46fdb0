"""The pipelines under test, built the same way for rillet, LangChain and the raw limit.

The chat workloads answer with a text of exactly ``tokens`` words, which the scripted models
(ours, and :class:`bench.lc_models.LCScriptedChatModel` for LangChain) stream one word per chunk.
LangChain is optional (the ``bench`` extra): :func:`have_langchain` says whether it is there, and
its builders import it only when called.
"""

from __future__ import annotations

import warnings
from typing import Any

from bench.raw import Expand, Forward, Once
from rillet.nodes.chat_models import split_text

__all__ = [
    "PROMPT",
    "TOPIC",
    "have_langchain",
    "lc_chain",
    "raw_chain_stages",
    "response_text",
    "rillet_chain",
]

PROMPT = "tell me a very long story about {topic}"
TOPIC = {"topic": "parrots"}
_VOCABULARY = ("the", "parrot", "said", "hello", "to", "a", "quiet", "river", "and", "then",
               "flew", "over", "green", "hills", "while", "singing", "softly")


def response_text(tokens: int) -> str:
    """A text that word chunking splits into exactly ``tokens`` pieces.

    >>> response_text(3), len(split_text(response_text(1000), "word"))
    ('the parrot said', 1000)
    """
    words = [_VOCABULARY[i % len(_VOCABULARY)] for i in range(tokens)]
    return " ".join(words)


def have_langchain() -> bool:
    """True when ``langchain-core`` can be imported (the ``bench`` extra is installed)."""
    try:
        import langchain_core  # noqa: F401
    except ImportError:
        return False
    return True


def rillet_chain(text: str, *, chunking: str | int = "word") -> Any:
    """``prompt | ScriptedChatModel | StrOutputParser`` answering ``text``."""
    from rillet.nodes import ChatPromptTemplate, ScriptedChatModel, StrOutputParser

    return (ChatPromptTemplate.from_template(PROMPT)
            | ScriptedChatModel(responses=[text], chunking=chunking) | StrOutputParser())


def lc_chain(text: str, *, chunking: str | int = "word") -> Any:
    """The same chain in LangChain, with its native-async scripted model."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    from bench.lc_models import LCScriptedChatModel

    quiet_langchain()
    return (ChatPromptTemplate.from_template(PROMPT)
            | LCScriptedChatModel(responses=[text], chunking=chunking) | StrOutputParser())


def raw_chain_stages(text: str, *, chunking: str | int = "word") -> list[Any]:
    """The same three stages as bare tasks: format once, split the response, pass through.

    In events mode the last stage also reports the chain's stream, as the frameworks do.
    """
    return [
        Once(lambda values: PROMPT.format(**values), name="prompt"),
        Expand(lambda _prompt: split_text(text, chunking), name="model"),
        Forward(name="parser", also=("chain",)),
    ]


def quiet_langchain() -> None:
    """Silence LangChain's warnings that would print in the middle of the table."""
    try:
        from langchain_core._api.deprecation import LangChainDeprecationWarning
    except ImportError:  # pragma: no cover - older or newer layouts
        return
    warnings.filterwarnings("ignore", category=LangChainDeprecationWarning)
