"""`open_ven`: the VEN with its HTTP client, built from the node's OpenADR settings; the node's one wiring
block runs it in its nursery (`async with open_ven(...) as ven: await nursery.start(ven.run)`)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from ampgate.clock import Clock
from ampgate.config import NodeConfig
from ampgate.events import Event
from ampgate.openadr.client import TokenSource, VtnClient
from ampgate.openadr.ports import CapacityLimits, SiteDirectory, SiteReadings
from ampgate.openadr.repository import PriceRepository
from ampgate.openadr.ven import OpenAdrVen, VenSettings

# One VTN call may take this long before it counts as the VTN not answering: a VTN's listing of a few
# hundred events is well under a second; 30 s leaves room for a slow one without stalling the loop for long.
REQUEST_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class OpenAdrSettings:
    """What `ampgate serve --openadr-…` sets."""

    vtn_url: str
    client_id: str
    client_secret: str
    ven: VenSettings
    token_url: str | None = None
    request_timeout_s: float = REQUEST_TIMEOUT_S


def settings_from(config: NodeConfig) -> OpenAdrSettings | None:
    """The VEN's settings from the node's, or None when no VTN is configured (no VEN runs)."""
    if config.openadr_vtn is None:
        return None
    if not config.openadr_client_id or not config.openadr_client_secret:
        raise ValueError("an OpenADR VTN needs a client id and a client secret")
    return OpenAdrSettings(
        vtn_url=config.openadr_vtn,
        client_id=config.openadr_client_id,
        client_secret=config.openadr_client_secret,
        token_url=config.openadr_token_url,
        ven=VenSettings(
            ven_name=config.openadr_ven_name or socket.gethostname(),
            poll_interval_s=config.openadr_poll_interval,
            safe_mode_timeout_s=config.openadr_safe_mode_timeout,
            fallback_kw=config.openadr_fallback_kw,
        ),
    )


@asynccontextmanager
async def open_ven(
    settings: OpenAdrSettings,
    *,
    limits: CapacityLimits,
    readings: SiteReadings,
    sites: SiteDirectory,
    prices: PriceRepository,
    publish: Callable[[Event], None],
    clock: Clock,
    callback_url: Callable[[], str] | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[OpenAdrVen]:
    """The VEN, its HTTP client open for as long as the block runs. `transport` replaces the network (tests)."""
    async with httpx.AsyncClient(timeout=settings.request_timeout_s, transport=transport) as http:
        tokens = TokenSource(
            http,
            settings.vtn_url,
            settings.client_id,
            settings.client_secret,
            token_url=settings.token_url,
            monotonic=clock.monotonic,
        )
        yield OpenAdrVen(
            VtnClient(http, settings.vtn_url, tokens),
            limits,
            readings,
            sites,
            prices,
            publish,
            clock,
            settings.ven,
            callback_url=callback_url,
        )
