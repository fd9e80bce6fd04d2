"""assay: evidence for choosing LLM providers.

The public API is re-exported here; everything else is reachable through its
subpackage (`assay.clients`, `assay.simulator`, `assay.store`, ...).
"""

from assay.clients import Timeouts, make_client, open_session
from assay.config import ProjectConfig, load_config, parse_config
from assay.errors import (
    AssayError,
    BadResponse,
    Cancelled,
    ClientError,
    ConfigError,
    ConnectionFailed,
    Overloaded,
    ProviderError,
    RateLimited,
    ServerError,
    StreamBroken,
    Timeout,
)
from assay.model import ChatRequest, Completion, Message, Target, Timing, Usage
from assay.records import Record

__version__ = "0.1.0"

__all__ = [
    "AssayError",
    "BadResponse",
    "Cancelled",
    "ChatRequest",
    "ClientError",
    "Completion",
    "ConfigError",
    "ConnectionFailed",
    "Message",
    "Overloaded",
    "ProjectConfig",
    "ProviderError",
    "RateLimited",
    "Record",
    "ServerError",
    "StreamBroken",
    "Target",
    "Timeout",
    "Timeouts",
    "Timing",
    "Usage",
    "__version__",
    "load_config",
    "make_client",
    "open_session",
    "parse_config",
]
