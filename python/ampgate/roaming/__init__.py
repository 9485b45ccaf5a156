"""OCPI 2.2.1 as a charge point operator: the node's roaming interface to eMSPs (and NSPs, hubs).

- `types`: our own msgspec Structs for the OCPI objects and the response envelope (README.md says why ours).
- `mapping`: the pure rules between OCPP and OCPI (connector status → EVSE status, EVSE uids, eMI3 ids, the
  2.0.1 device model's connector types).
- `parties`: the parties and their credentials tokens (table `ocpi_parties`).
- `credentials`: the registration handshake in both directions; `client`: calls to parties (httpx on trio).
- `equipment`: what each charger's EVSEs and connectors are, as an admin described them.
- `locations`: every site as a Location, live from the bus; `push`: changes pushed to the parties, coalesced.
- `token_rows`: the Tokens eMSPs pushed (`ocpi_tokens`) and what let each roaming session in
  (`ocpi_authorizations`, the seam the Sessions and CDR modules read); `whitelist`: the decision table of
  real-time authorization; `authority`: our answer for an eMSP's token at our chargers.
- `command_rules` and `commands`: eMSPs' commands as OCPP calls, and their results.
- `cdr_types` and `billing_objects`: the Session, CDR and Tariff objects and how they are built from our
  transactions, authorizations, billing's CDRs and the pricing engine (pure); `billing_rows`: their tables;
  `sessions`: each roaming session pushed to its token's eMSP; `cdr_delivery`: CDRs from a durable queue;
  `tariff_push`: tariffs to every party; `outbox`: coalesced pushes with a due time per key.
- `server`: versions, version details, credentials and the module registry under /ocpi on the public
  listener; `locations_routes`, `tokens_routes`, `commands_routes`, `billing_routes`: the Locations (Sender),
  Tokens (Receiver), Commands (Receiver), and Sessions, CDRs and Tariffs (Sender) modules.
- `service.Roaming`: all of it as one part of the node.

Import from the modules themselves: this package's `__init__` stays empty of imports because the operator API
(`ampgate.api.deps`) reads its value types while the server here builds on the public app, which builds on the
API's error mapping.
"""
