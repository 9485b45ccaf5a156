"""The HTTP API (Litestar): routes, bearer-token auth with roles, error mapping, OpenAPI at /api/v1/schema.

It owns no state: everything comes from the services handed to `create_app` (`ApiServices`: repositories,
presence, the Commander, ...). The node serves the app with Hypercorn on its own trio loop.
"""

from ampgate.api.app import create_app
from ampgate.api.deps import ApiServices

__all__ = ["ApiServices", "create_app"]
