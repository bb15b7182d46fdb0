"""Wire formats: how values, events and streams cross a process boundary.

Holds the msgpack/JSON value codec with its registry of wire types (:mod:`.codec`), the checks
a decoded body passes before anything recurses into it, with the one nesting limit
(:mod:`.checks`), JSON patch (:mod:`.jsonpatch`), the framed, checksummed log-file format
(:mod:`.logformat`, with its writers in :mod:`.logfile`) and server-sent events with content
negotiation (:mod:`.sse`).

May import: :mod:`rillet.runtime.errors` only. Nothing here knows about runs, actors or HTTP
servers, so every other subpackage can build on it.
"""

from rillet.runtime.exports import fixup_module_metadata as _fixup_module_metadata
from rillet.runtime.wire.codec import decode_value, encode_value, register_wire_type
from rillet.runtime.wire.jsonpatch import JsonPatchError, apply_patch, make_patch

__all__ = [
    "JsonPatchError",
    "apply_patch",
    "decode_value",
    "encode_value",
    "make_patch",
    "register_wire_type",
]

_fixup_module_metadata(__name__, globals())
