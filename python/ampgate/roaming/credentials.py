"""The credentials module's logic, in both directions (credentials.asciidoc), over the party table and the
OCPI client; the HTTP routes (`server`) and the operator API call it.

They register with us: an admin adds the party and hands it the registration token and our versions URL out of
band; the party reads our versions and version details with that token, then POSTs its credentials (the token
we are to call it with, its versions URL, its roles). We read its versions and 2.2.1 details with its token
(failing that: status 3001; no 2.2.1: 3002), store what was agreed, forget the registration token and answer our
credentials with a fresh token for it to call us with from then on. PUT does the same for a registered party
(new tokens, endpoints read again); DELETE forgets everything.

We register with them: an admin gives the party's versions URL and the registration token it issued us. We
read its versions and details with that token, make the token it will call us with (valid from that moment: the
party reads our versions and details with it while it handles our POST), POST our credentials to its
credentials endpoint, and keep the token it answers with for calling it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgspec

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.errors import AmpgateError, ConflictError, NotFoundError, ValidationError
from ampgate.events import (
    OcpiPartyCreated,
    OcpiPartyDeleted,
    OcpiPartyRegistered,
    OcpiPartyUnregistered,
)
from ampgate.roaming import errors
from ampgate.roaming.client import OcpiClient, PartyRefused, PartyUnreachable, UnsupportedVersion
from ampgate.roaming.parties import (
    BY_THEM,
    BY_US,
    REGISTERED,
    Party,
    PartyRepository,
    Registration,
    digest,
    new_token,
)
from ampgate.roaming.types import (
    OCPI_VERSION,
    BusinessDetails,
    Credentials,
    CredentialsRole,
    ModuleId,
    Role,
    StatusCode,
    VersionDetails,
)

log = logging.getLogger(__name__)


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """Who this node is in OCPI: its country code and party id (`ampgate serve --ocpi-country-code
    --ocpi-party-id`), its name, and the base URL of its OCPI server (`--ocpi-base-url`, by default the public
    base URL + /ocpi)."""

    country_code: str
    party_id: str
    name: str
    base_url: str
    website: str | None = None

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}/versions"

    @property
    def details_url(self) -> str:
        return f"{self.base_url}/{OCPI_VERSION}"

    def module_url(self, path: str) -> str:
        return f"{self.details_url}/{path}"

    def business(self) -> BusinessDetails:
        return BusinessDetails(name=self.name, website=self.website)

    def credentials(self, token: str) -> Credentials:
        """Our credentials object with `token` (the one the party is to call us with)."""
        return Credentials(
            token=token,
            url=self.versions_url,
            roles=[
                CredentialsRole(
                    role=Role.CPO,
                    business_details=self.business(),
                    party_id=self.party_id,
                    country_code=self.country_code,
                )
            ],
        )


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the party and whether it used its registration token (or a token we gave it while we
    register with it, not yet confirmed), which is good only for versions, version details and credentials."""

    party: Party
    registering: bool

    def owns(self, country_code: str, party_id: str) -> bool:
        """Whether objects owned by `country_code`*`party_id` are the caller's: one of its credentials roles, or
        the code it was added under (compared without case)."""
        code = (country_code.upper(), party_id.upper())
        if code == (self.party.country_code.upper(), self.party.party_id.upper()):
            return True
        return any((r.country_code.upper(), r.party_id.upper()) == code for r in self.party.roles)


class PartyCallError(AmpgateError):
    """An admin's registration with a party failed on the party's side: 502 with what it said or why it could
    not be used (`party_unreachable`, `party_refused`, `unsupported_version`, `no_credentials_endpoint`)."""

    default_code = "party_refused"
    status_hint = 502


class Registrar:
    """The credentials handshake in both directions, and the parties' lifecycle."""

    def __init__(
        self,
        parties: PartyRepository,
        client: OcpiClient,
        identity: Identity,
        *,
        publish: Publisher,
        clock: Clock,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.parties = parties
        self.client = client
        self.identity = identity
        self._bus = publish
        self._clock = clock
        self._on_change = on_change
        # Tokens we handed a party in our POST while we register with it, by digest: good for versions and
        # details until the handshake ends (the party reads them while it handles our POST).
        self._provisional: dict[str, int] = {}
        # Parties whose handshake is running: a second one at the same time is refused rather than raced.
        self._busy: set[int] = set()

    # -- who is calling ------------------------------------------------------------------------------------------

    def authenticate(self, token: str) -> Caller | None:
        """The caller `token` identifies, or None."""
        party = self.parties.by_token(token)
        if party is not None:
            return Caller(party=party, registering=False)
        party = self.parties.by_registration_token(token)
        if party is not None:
            return Caller(party=party, registering=True)
        ref = self._provisional.get(digest(token))
        if ref is not None and (party := self.parties.get(ref)) is not None:
            return Caller(party=party, registering=True)
        return None

    # -- they register with us -----------------------------------------------------------------------------------

    async def register_them(self, caller: Caller, theirs: Credentials) -> Credentials:
        """POST credentials. Raises OcpiError: 405 when the caller is registered already (or registering right
        now), 2001 when its roles do not name it, 3001 / 3002 when its API cannot be used."""
        if not caller.registering or caller.party.state == REGISTERED:
            raise errors.not_allowed("already registered: use PUT to update the credentials")
        return await self._agree(caller.party, theirs, updated=False)

    async def update_them(self, caller: Caller, theirs: Credentials) -> Credentials:
        """PUT credentials. Raises OcpiError: 405 when the caller is not registered; as `register_them`."""
        if caller.registering:
            raise errors.not_allowed("not registered yet: use POST to register")
        return await self._agree(caller.party, theirs, updated=True)

    async def unregister_them(self, caller: Caller) -> None:
        """DELETE credentials. Raises OcpiError 405 when the caller is not registered."""
        if caller.registering:
            raise errors.not_allowed("not registered")
        party = await self.parties.unregister(caller.party.id)
        if party is not None:
            self._publish_unregistered(party, BY_THEM)
        self._on_change()

    async def _agree(self, party: Party, theirs: Credentials, *, updated: bool) -> Credentials:
        _check_roles(party, theirs.roles)
        if party.id in self._busy:
            raise errors.not_allowed("a credentials exchange with this party is running")
        self._busy.add(party.id)
        try:
            details = await self._their_details(theirs.url, theirs.token)
            ours = new_token()
            registration = Registration(
                their_token=theirs.token,
                versions_url=theirs.url,
                version=OCPI_VERSION,
                endpoints=tuple(details.endpoints),
                roles=tuple(theirs.roles),
            )
            stored = await self.parties.register(party.id, registration, BY_THEM, ours)
        finally:
            self._busy.discard(party.id)
        self._publish_registered(stored, BY_THEM, updated=updated)
        self._on_change()
        return self.identity.credentials(ours)

    async def _their_details(self, versions_url: str, token: str) -> VersionDetails:
        try:
            return await self.client.negotiate(versions_url, token)
        except UnsupportedVersion as e:
            raise errors.OcpiError(str(e), status_code=StatusCode.UNSUPPORTED_VERSION) from None
        except (PartyUnreachable, PartyRefused) as e:
            raise errors.OcpiError(
                f"could not read your versions and version details: {e}",
                status_code=StatusCode.CLIENT_API_UNUSABLE,
            ) from None

    # -- we register with them -----------------------------------------------------------------------------------

    async def register_with(self, ref: int, versions_url: str, token: str) -> Party:
        """Register with party `ref` at its `versions_url` with the registration `token` it issued us. Raises
        NotFoundError, ConflictError `party_registered` / `registration_running`, PartyCallError."""
        party = self._party(ref)
        if party.state == REGISTERED:
            raise ConflictError("the party is registered already", field="id", code="party_registered")
        if ref in self._busy:
            raise ConflictError(
                "a credentials exchange with this party is running", field="id", code="registration_running"
            )
        self._busy.add(ref)
        ours = new_token()
        try:
            try:
                details = await self.client.negotiate(versions_url, token)
            except UnsupportedVersion as e:
                raise PartyCallError(str(e), code="unsupported_version", field="versions_url") from None
            credentials_url = next(
                (e.url for e in details.endpoints if e.identifier == ModuleId.CREDENTIALS), None
            )
            if credentials_url is None:
                raise PartyCallError(
                    f"{versions_url}: its {OCPI_VERSION} endpoints have no credentials module",
                    code="no_credentials_endpoint",
                    field="versions_url",
                )
            self._provisional[digest(ours)] = ref
            theirs = await self.client.post_credentials(
                credentials_url, token, self.identity.credentials(ours)
            )
            registration = Registration(
                their_token=theirs.token,
                versions_url=theirs.url,
                version=OCPI_VERSION,
                endpoints=tuple(details.endpoints),
                roles=tuple(theirs.roles),
            )
            stored = await self.parties.register(ref, registration, BY_US, ours)
        except PartyUnreachable as e:
            raise PartyCallError(str(e), code="party_unreachable") from None
        except PartyRefused as e:
            raise PartyCallError(str(e), code="party_refused") from None
        finally:
            self._busy.discard(ref)
            self._provisional.pop(digest(ours), None)
        self._publish_registered(stored, BY_US, updated=False)
        self._on_change()
        return stored

    # -- the parties' lifecycle (admin) ----------------------------------------------------------------------------

    async def create(
        self, country_code: str, party_id: str, role: str, name: str | None
    ) -> tuple[Party, str]:
        """Add a party; its registration token in plain text (shown once). Raises ValidationError,
        ConflictError `party_exists`."""
        try:
            role = Role(role).value
        except ValueError:
            raise ValidationError(
                f"role is one of {', '.join(r.value for r in Role)}", field="role"
            ) from None
        party, token = await self.parties.create(country_code.upper(), party_id.upper(), role, name)
        self._bus.publish(
            OcpiPartyCreated(
                at=self._clock.now(),
                party_ref=party.id,
                country_code=party.country_code,
                party_id=party.party_id,
                role=party.role,
            )
        )
        return party, token

    async def delete(self, ref: int) -> None:
        """Delete a party. A registered one is told first (DELETE on its credentials endpoint, best effort: a
        party that does not answer is deleted all the same). Raises NotFoundError."""
        party = self._party(ref)
        if party.state == REGISTERED and party.their_token:
            url = party.endpoint(ModuleId.CREDENTIALS, "SENDER") or party.endpoint(
                ModuleId.CREDENTIALS, "RECEIVER"
            )
            if url is not None:
                try:
                    await self.client.call("DELETE", url, party.their_token)
                except (PartyUnreachable, PartyRefused) as e:
                    log.warning(
                        "OCPI: could not unregister at %s*%s: %s", party.country_code, party.party_id, e
                    )
            self._publish_unregistered(party, BY_US)
        await self.parties.delete(ref)
        self._bus.publish(
            OcpiPartyDeleted(
                at=self._clock.now(), party_ref=ref, country_code=party.country_code, party_id=party.party_id
            )
        )
        self._on_change()

    def _party(self, ref: int) -> Party:
        party = self.parties.get(ref)
        if party is None:
            raise NotFoundError(f"OCPI party {ref} does not exist", field="id")
        return party

    def _publish_registered(self, party: Party, by: str, *, updated: bool) -> None:
        self._bus.publish(
            OcpiPartyRegistered(
                at=self._clock.now(),
                party_ref=party.id,
                country_code=party.country_code,
                party_id=party.party_id,
                role=party.role,
                by=by,
                version=party.version or OCPI_VERSION,
                modules=tuple(sorted({e.identifier for e in party.endpoints})),
                updated=updated,
            )
        )

    def _publish_unregistered(self, party: Party, by: str) -> None:
        self._bus.publish(
            OcpiPartyUnregistered(
                at=self._clock.now(),
                party_ref=party.id,
                country_code=party.country_code,
                party_id=party.party_id,
                by=by,
            )
        )


def _check_roles(party: Party, roles: list[CredentialsRole]) -> None:
    """A party's credentials must name it: one role with the country code and party id it was added with
    (compared without case: CiString). Otherwise the registration token was used by someone else, or the
    admin added the party under another code. Raises OcpiError 2001 naming `roles`."""
    for r in roles:
        if (
            r.country_code.upper() == party.country_code.upper()
            and r.party_id.upper() == party.party_id.upper()
        ):
            return
    raise errors.invalid(
        f"no role is {party.country_code}*{party.party_id}, the party this token was issued to", "roles"
    )
