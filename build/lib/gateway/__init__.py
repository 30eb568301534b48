"""Secure data-sharing gateway for government departments (数据共享网关).

The public surface is small on purpose: build the app, the settings, and the errors a
caller may want to catch. Everything else is internal and may change.
"""

from gateway.app import create_app
from gateway.errors import GatewayError
from gateway.settings import Settings

__all__ = ["GatewayError", "Settings", "__version__", "create_app"]

__version__ = "0.1.0"
