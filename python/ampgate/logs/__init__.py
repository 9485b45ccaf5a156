"""Logs and diagnostics: asking chargers for their log files and receiving them.

Owns the `log_requests` table (one row per GetLog / GetDiagnostics sent, with its status timeline, its upload
token's hash and the file received), the handlers of LogStatusNotification (2.0.1 and the 1.6 security
extension) and DiagnosticsStatusNotification (1.6), the service that builds and sends the requests through the
Commander, and the receiving end of uploads (the files, streamed to disk with their SHA-256). The HTTP parts
live with their listeners: `ampgate.api.logs` (operator API) and `ampgate.public.uploads` (public surface).

`state` holds the rules (which statuses end a request, which request a notification belongs to, the payloads
sent) as pure functions; everything else is the I/O around them.
"""

from ampgate.logs.handlers import LogStatusHandlers
from ampgate.logs.repository import LogRepository, LogRow, NewLogRequest
from ampgate.logs.service import LogService, LogSpec
from ampgate.logs.uploads import UploadReceiver

__all__ = [
    "LogRepository",
    "LogRow",
    "LogService",
    "LogSpec",
    "LogStatusHandlers",
    "NewLogRequest",
    "UploadReceiver",
]
