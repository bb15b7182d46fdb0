"""Every error rillet raises on purpose, in one place, under one base class.

Each class lives with the layer that raises it (:mod:`rillet.runtime.errors`,
:mod:`rillet.graphs`, :mod:`rillet.nodes`); this module reaches all of them, so
``from rillet.errors import OutputParserError`` works without knowing where it is defined, and
``except rillet.errors.RilletError`` catches them all. The hierarchy::

    RilletError
    ├── NodeInputError (TypeError)            a node got a value it cannot handle
    │   └── ToolArgumentError                 a tool's arguments do not fit its schema
    ├── ConfigError (TypeError, ValueError)   a run config key of the wrong type or value
    ├── WireFormatError (ValueError)          bytes that do not decode to a rillet value or event
    │   └── TruncatedLogError                 an event log is damaged or ends inside a record
    ├── JsonPatchError (ValueError)           a JSON-patch op that cannot be applied
    ├── GraphError (ValueError)               a Graph that cannot run (unknown node, cycle, cut off)
    ├── OutputParserError (ValueError)        a model's output that does not parse
    ├── MissingVariablesError (ValueError)    a prompt template missing some of its variables
    ├── InvalidTemplateError (ValueError)     a prompt template that does not parse
    ├── MessageFieldError (TypeError)         a message field of the wrong type
    ├── MessageCoercionError (TypeError)      a value that cannot become a message
    ├── ToolSchemaError (TypeError)           a function whose signature has no JSON schema
    ├── ProviderError                         a model provider answered with an error
    │   ├── ProviderConnectionError           could not connect, or the stream broke
    │   └── ProviderTimeout (TimeoutError)    the provider was too slow
    ├── MissingAPIKeyError (ValueError)       no API key passed or in the environment
    ├── WorkerBusy                            a worker's queue of waiting submissions is full
    ├── RunCancelled                          a worker's run was cancelled before it finished
    ├── RemoteError                           a run on a remote server failed
    ├── RequestRejected                       an HTTP request refused, with its status
    ├── ClientGone                            the HTTP client left before its request arrived
    ├── StoreUnavailable                      the scale-out queue or event store is unreachable
    ├── RunSuperseded                         a later attempt of a queued run took over
    ├── RunNotFound (LookupError)             no event log for this run id
    ├── MissingExtraError (ImportError)       an optional extra is not installed
    ├── AsyncioRequiredError (RuntimeError)   a step's asyncio code ran on plain trio
    └── HostClosed (RuntimeError)             an asyncio loop's trio guest stopped

>>> from rillet.errors import OutputParserError, RilletError
>>> issubclass(OutputParserError, RilletError) and issubclass(OutputParserError, ValueError)
True
"""

from rillet.graphs.graph import GraphError
from rillet.nodes.messages.errors import MessageCoercionError, MessageFieldError
from rillet.nodes.parsers import OutputParserError
from rillet.nodes.providers.errors import (
    MissingAPIKeyError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
)
from rillet.nodes.providers.tool_schema import ToolSchemaError
from rillet.nodes.templates import InvalidTemplateError, MissingVariablesError
from rillet.nodes.tools import ToolArgumentError
from rillet.runtime.errors import (
    AsyncioRequiredError,
    ClientGone,
    ConfigError,
    HostClosed,
    JsonPatchError,
    MissingExtraError,
    NodeInputError,
    RemoteError,
    RequestRejected,
    RilletError,
    RunCancelled,
    RunNotFound,
    RunSuperseded,
    StoreUnavailable,
    TruncatedLogError,
    WireFormatError,
    WorkerBusy,
)

__all__ = [
    "AsyncioRequiredError",
    "ClientGone",
    "ConfigError",
    "GraphError",
    "HostClosed",
    "InvalidTemplateError",
    "JsonPatchError",
    "MessageCoercionError",
    "MessageFieldError",
    "MissingAPIKeyError",
    "MissingExtraError",
    "MissingVariablesError",
    "NodeInputError",
    "OutputParserError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "RemoteError",
    "RequestRejected",
    "RilletError",
    "RunCancelled",
    "RunNotFound",
    "RunSuperseded",
    "StoreUnavailable",
    "ToolArgumentError",
    "ToolSchemaError",
    "TruncatedLogError",
    "WireFormatError",
    "WorkerBusy",
]
