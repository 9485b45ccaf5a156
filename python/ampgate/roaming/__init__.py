"""OCPI 2.2.1 as a charge point operator: the node's roaming interface to eMSPs (and NSPs, hubs).

- `types`: our own msgspec Structs for the OCPI objects and the response envelope (README.md says why ours).
- `mapping`: the pure rules between OCPP and OCPI (connector status → EVSE status, EVSE uids, eMI3 ids, the
  2.0.1 device model's connector types).
- `parties`: the parties and their credentials tokens (table `ocpi_parties`).
- `credentials`: the registration handshake in both directions; `client`: calls to parties (httpx on trio).
- `equipment`: what each charger's EVSEs and connectors are, as an admin described them.
- `locations`: every site as a Location, live from the bus; `push`: changes pushed to the parties, coalesced.
- `server`: versions, version details, credentials and the module registry under /ocpi on the public
  listener; `locations_routes`: the Locations module (Sender).
- `service.Roaming`: all of it as one part of the node.

Import from the modules themselves: this package's `__init__` stays empty of imports because the operator API
(`ampgate.api.deps`) reads its value types while the server here builds on the public app, which builds on the
API's error mapping.
"""
