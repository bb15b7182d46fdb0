"""Partial JSON: LangChain's ``JsonOutputParser`` stream, read in linear time.

LangChain re-parses all the text so far after every chunk (reference §4.1): strip it, try
``json.loads``, else close the open string and brackets and drop characters from the end until
something parses; when nothing does, parse what follows a ```` ``` ```` fence. That costs
O(n²) over a stream. :class:`PartialJsonParser` reads each character once into a live Python
value and reports the same sequence of values:

>>> parser = PartialJsonParser()
>>> [parser.snapshot() for chunk in ['{"n": 1', '2.', '5, "s": "ab', 'c"}'] if parser.feed(chunk)]
[{'n': 1}, {'n': 12}, {'n': 12.5, 's': 'ab'}, {'n': 12.5, 's': 'abc'}]

What LangChain's re-parse shows, and so what the parser shows: a string as soon as its opening
quote arrives, growing; a key only once its value shows; a number as its longest valid prefix
(``12.`` is 12); ``true``/``false``/``null`` once complete; a string ending in a partial ``\\u``
escape hides its whole member until the escape is complete; trailing whitespace and backticks of
the whole text are cut, even inside an open string; a mismatched closing bracket means no value
from then on; text before the JSON means no value unless a fence follows.

Exactness and cost. Well-formed JSON, optionally fenced (```` ```json ````), preceded by
whitespace or by prose before a fence, followed by prose: exact, O(1) amortized per character.
Anything LangChain would repair in odd ways (a syntax error, ``NaN``, a repeated key, prose after
the JSON that leaves brackets open) switches the parser, for the rest of the stream, to re-running
LangChain's algorithm on the whole text per chunk: still exact, as slow as LangChain.

Verified against ``langchain-core`` 1.8.1 (``JsonOutputParser().transform``, ``diff`` off and on)
on 20,500 random documents: 10,000 split at random points, half of them damaged (garbage,
truncation, prose and fences around them), and 10,500 well-formed ones full of small numbers, in
fixed-size chunks of 1-30 characters; the compat tests repeat this on 1.8.3. The emitted values
are identical in all of them (``repr``-equal, so ``1``, ``1.0`` and ``True`` are told apart). The
``diff=True`` op lists are identical too, except in 20 documents (0.1%), where they lead to the
same values by other ops: jsonpatch turned a changed list item and an equal value added elsewhere
in the same chunk into a ``move``, or the text was malformed (re-parsing diffs with
:func:`rillet.runtime.wire.jsonpatch.make_patch`). Like LangChain, changes are judged with
``==``: after ``1`` the chunk ``.0`` reports nothing, though ``value()`` is then ``1.0``.

The modules, top down: ``parser`` (the API above), ``reader`` (the incremental state machine)
with ``strings`` (a string as it streams) and ``changes`` (the log ``last_patch`` is built
from), ``reparse`` (LangChain's own algorithm, for the text the reader hands over) and
``syntax`` (the lexical rules they share). Only the names below are public.
"""

from rillet.nodes.partial_json.parser import (
    PartialJsonParser,
    parse_json_markdown,
    parse_partial_json,
)
from rillet.runtime.lowlevel import fixup_module_metadata as _fixup_module_metadata

__all__ = ["PartialJsonParser", "parse_json_markdown", "parse_partial_json"]

_fixup_module_metadata(__name__, globals())
