"""Secure data-sharing gateway for government departments (数据共享网关).

The public surface is small on purpose: build the app, the settings, and the errors a
caller may want to catch. Everything else is internal and may change.

``create_app`` is imported on first use (PEP 562): importing any ``gateway`` module - the
offline verifier, the command line - must not load the web application and its
dependencies (about 1 s of start-up).
"""

from typing import TYPE_CHECKING, Any

from gateway.errors import GatewayError
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.app import create_app

__all__ = ["GatewayError", "Settings", "__version__", "create_app"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from gateway.app import create_app

        return create_app
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
