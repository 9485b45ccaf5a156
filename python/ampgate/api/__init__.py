"""The HTTP API (Litestar): routes, bearer-token auth with roles, error mapping, OpenAPI at /api/v1/schema.

It owns no state: everything comes from the node handed to `create_app` (its store, presence and operations).
The node serves the app with Hypercorn on its own trio loop.
"""

from ampgate.api.app import create_app

__all__ = ["create_app"]
