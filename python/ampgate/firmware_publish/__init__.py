"""Firmware publishing on local controllers (2.0.1 L03 / L04): a local controller downloads an image once and
serves it to the chargers behind it.

Owns the `firmware_publications` table (one row per PublishFirmware: what was sent, its status timeline, the
URIs the controller publishes the image at), the PublishFirmwareStatusNotification handler, and the service that
sends PublishFirmware / UnpublishFirmware through the Commander. `state` holds the rules as pure functions. The
HTTP routes live in `ampgate.api.firmware_publications`.
"""

from ampgate.firmware_publish.handlers import PublishStatusHandlers
from ampgate.firmware_publish.repository import PublicationRepository, PublicationRow
from ampgate.firmware_publish.service import FirmwarePublications
from ampgate.firmware_publish.state import PublishSpec, TimelineEntry

__all__ = [
    "FirmwarePublications",
    "PublicationRepository",
    "PublicationRow",
    "PublishSpec",
    "PublishStatusHandlers",
    "TimelineEntry",
]
