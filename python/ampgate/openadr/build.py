"""The VEN built from the node's OpenADR settings (`settings_from`): `build_ven` for the node (the VEN's `run`
closes its HTTP client), `open_ven` for scripts and tests that drive it by hand."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import trio

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


def build_ven(
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
) -> OpenAdrVen:
    """The VEN with an HTTP client of its own, which its `run` closes when it ends: what the node builds (in
    its constructor) and starts in its nursery. `transport` replaces the network (tests)."""
    http = httpx.AsyncClient(timeout=settings.request_timeout_s, transport=transport)
    tokens = TokenSource(
        http,
        settings.vtn_url,
        settings.client_id,
        settings.client_secret,
        token_url=settings.token_url,
        monotonic=clock.monotonic,
    )
    return OpenAdrVen(
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
    """The VEN, its HTTP client open for as long as the block runs (for scripts and tests that drive it
    without `run`). `transport` replaces the network (tests)."""
    ven = build_ven(
        settings,
        limits=limits,
        readings=readings,
        sites=sites,
        prices=prices,
        publish=publish,
        clock=clock,
        callback_url=callback_url,
        transport=transport,
    )
    try:
        yield ven
    finally:
        with trio.CancelScope(shield=True):
            await ven.aclose()
