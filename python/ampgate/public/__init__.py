"""The public surface: the second HTTP listener, for what chargers, eMSPs, grid operators and EV owners' apps
call (firmware downloads, log uploads, OCPI, OpenADR callbacks, `/public/v1/...`). It accepts no operator token:
each route brings its own authentication and rate limit, and file transfers count against a cap so they can
never take the node's open files (shared/API-CONVENTIONS.md)."""

from ampgate.public.app import PublicRoutes, create_public_app
from ampgate.public.transfers import FILE_TRANSFER, TransferLimiter

__all__ = ["FILE_TRANSFER", "PublicRoutes", "TransferLimiter", "create_public_app"]
