"""The on-disk shape: connection settings, the migrations, and how values (timestamps) are written.

Migrations are an append-only list of SQL scripts; `schema_version` holds how many have run. Never edit a
script that has shipped: add a new one.
"""

from __future__ import annotations

import sqlite3

# How long a connection waits for another one's write lock before failing with "database is locked". The
# writer thread's transactions last milliseconds; 5 s covers a CLI `token create` racing a busy node (and a
# slow disk) without hanging a caller for long on a real deadlock.
BUSY_TIMEOUT_MS = 5000

# Each entry is one migration; pending ones run in one transaction with the version bump. Index i brings the schema from version i to i + 1.
MIGRATIONS: tuple[str, ...] = (
    # 1: chargers and API tokens.
    """
    CREATE TABLE chargers (
        id TEXT PRIMARY KEY,
        password_hash TEXT NULL,
        vendor TEXT NULL,
        model TEXT NULL,
        serial TEXT NULL,
        firmware TEXT NULL,
        protocol TEXT NULL,
        registered_at TEXT NOT NULL,
        last_boot_at TEXT NULL,
        accepted INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        label TEXT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # 2: OCPP sessions: id tokens, transactions (both protocol versions), their meter samples, the 2.0.1
    # TransactionEvent sequence numbers seen (de-duplication [E04]) and the last status of every connector.
    """
    CREATE TABLE id_tokens (
        id_token TEXT PRIMARY KEY COLLATE NOCASE,
        type TEXT NULL,
        status TEXT NOT NULL,
        expiry TEXT NULL,
        group_id TEXT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE transactions (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        protocol TEXT NOT NULL,
        remote_id TEXT NULL,
        evse_id INTEGER NULL,
        connector_id INTEGER NULL,
        id_token TEXT NULL,
        started_at TEXT NOT NULL,
        stopped_at TEXT NULL,
        meter_start_wh REAL NULL,
        meter_stop_wh REAL NULL,
        meter_last_wh REAL NULL,
        energy_wh REAL NULL,
        stop_reason TEXT NULL
    );
    CREATE UNIQUE INDEX transactions_remote ON transactions (charger_id, remote_id) WHERE remote_id IS NOT NULL;
    CREATE INDEX transactions_start16 ON transactions (charger_id, connector_id, started_at);
    CREATE INDEX transactions_charger ON transactions (charger_id, id);
    CREATE INDEX transactions_started ON transactions (started_at);
    CREATE TABLE transaction_events (
        transaction_id INTEGER NOT NULL,
        seq_no INTEGER NOT NULL,
        PRIMARY KEY (transaction_id, seq_no)
    ) WITHOUT ROWID;
    CREATE TABLE meter_samples (
        transaction_id INTEGER NOT NULL,
        at TEXT NOT NULL,
        measurand TEXT NOT NULL,
        phase TEXT NOT NULL DEFAULT '',
        value REAL NOT NULL,
        unit TEXT NOT NULL,
        context TEXT NULL,
        PRIMARY KEY (transaction_id, at, measurand, phase)
    ) WITHOUT ROWID;
    CREATE TABLE connector_status (
        charger_id TEXT NOT NULL,
        evse_id INTEGER NOT NULL,
        connector_id INTEGER NOT NULL,
        protocol TEXT NOT NULL,
        status TEXT NOT NULL,
        error_code TEXT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger_id, evse_id, connector_id)
    ) WITHOUT ROWID;
    """,
    # 3: the last firmware status each charger reported (1.6 FirmwareStatusNotification and
    # SignedFirmwareStatusNotification, 2.0.1 FirmwareStatusNotification): the status as sent, the update's
    # requestId when it sent one, and when the node received it. No index on these or on `firmware` for the
    # API's filters: an index on `firmware` is rewritten by every BootNotification, which nearly doubled what a
    # boot storm's upserts cost the writer (measured 6 -> 12 µs each), while a filtered page of chargers scans
    # at most the table once (~15 ms for 100k chargers).
    """
    ALTER TABLE chargers ADD COLUMN firmware_status TEXT NULL;
    ALTER TABLE chargers ADD COLUMN firmware_request_id INTEGER NULL;
    ALTER TABLE chargers ADD COLUMN firmware_status_at TEXT NULL;
    """,
    # 4: security events (SecurityEventNotification): unique on what the charger sent, so a resend is one row;
    # listed newest first, per charger or fleet-wide.
    """
    CREATE TABLE security_events (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        type TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        tech_info TEXT NOT NULL DEFAULT '',
        critical INTEGER NOT NULL,
        received_at TEXT NOT NULL,
        UNIQUE (charger_id, type, occurred_at, tech_info)
    );
    CREATE INDEX security_events_charger ON security_events (charger_id, id);
    """,
    # 5: multi-part reports chargers send in answer to our requests (NotifyReport, NotifyMonitoringReport,
    # NotifyDisplayMessages, NotifyCustomerInformation, ReportChargingProfiles), each part as received; and the
    # device model the reports, GetVariables / SetVariables and 1.6 GetConfiguration build. Absent levels
    # are stored as '' / -1 so that they take part in the key.
    """
    CREATE TABLE charger_reports (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        request_id INTEGER NOT NULL,
        requested_at TEXT NULL,
        completed_at TEXT NULL,
        parts INTEGER NOT NULL DEFAULT 0,
        UNIQUE (charger_id, kind, request_id)
    );
    CREATE TABLE charger_report_parts (
        report_id INTEGER NOT NULL,
        seq_no INTEGER NOT NULL,
        tbc INTEGER NOT NULL,
        generated_at TEXT NULL,
        received_at TEXT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (report_id, seq_no)
    ) WITHOUT ROWID;
    CREATE TABLE device_variables (
        charger_id TEXT NOT NULL,
        component TEXT NOT NULL,
        component_instance TEXT NOT NULL DEFAULT '',
        evse_id INTEGER NOT NULL DEFAULT -1,
        connector_id INTEGER NOT NULL DEFAULT -1,
        variable TEXT NOT NULL,
        variable_instance TEXT NOT NULL DEFAULT '',
        attribute_type TEXT NOT NULL,
        value TEXT NULL,
        mutability TEXT NULL,
        persistent INTEGER NULL,
        constant INTEGER NULL,
        characteristics TEXT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger_id, component, component_instance, evse_id, connector_id, variable,
                     variable_instance, attribute_type)
    ) WITHOUT ROWID;
    """,
    # 6: log and diagnostics requests (GetLog, GetDiagnostics), one row each: what was sent, the status
    # timeline (JSON [[status, at], ...]), the upload token's SHA-256 (never the token) and the file received.
    # `request_id` is the charger's requestId (the row's own id when the node numbers it). Indexed for the
    # API's per-charger pages, the notifications' lookup by request id, and an upload's lookup by token.
    """
    CREATE TABLE log_requests (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        protocol TEXT NOT NULL,
        command TEXT NOT NULL,
        log_type TEXT NOT NULL,
        request_id INTEGER NULL,
        location TEXT NOT NULL,
        upload_token_hash TEXT NULL UNIQUE,
        upload_state TEXT NULL,
        upload_expires_at TEXT NULL,
        status TEXT NOT NULL,
        timeline TEXT NOT NULL,
        error_code TEXT NULL,
        error_message TEXT NULL,
        charger_filename TEXT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        file_path TEXT NULL,
        file_name TEXT NULL,
        file_size INTEGER NULL,
        file_sha256 TEXT NULL,
        file_received_at TEXT NULL
    );
    CREATE INDEX log_requests_charger ON log_requests (charger_id, id);
    CREATE INDEX log_requests_request ON log_requests (charger_id, request_id);
    """,
    # 7: smart-charging notifications: the limits other sources set, in force per charger, EVSE (-1: the whole
    # charger) and source; and what chargers reported (limits set / cleared, EV charging needs and schedules
    # with the node's transaction, composite schedules), newest first.
    """
    CREATE TABLE charging_limits (
        charger_id TEXT NOT NULL,
        evse_id INTEGER NOT NULL,
        source TEXT NOT NULL,
        grid_critical INTEGER NULL,
        schedules TEXT NULL,
        set_at TEXT NOT NULL,
        PRIMARY KEY (charger_id, evse_id, source)
    ) WITHOUT ROWID;
    CREATE TABLE charging_notes (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        evse_id INTEGER NOT NULL,
        transaction_id INTEGER NULL,
        received_at TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX charging_notes_charger ON charging_notes (charger_id, kind, id);
    CREATE INDEX charging_notes_transaction ON charging_notes (transaction_id) WHERE transaction_id IS NOT NULL;
    """,
    # 8: variable monitoring: each charger's monitors by id, and its NotifyEvent events (a resent event, same id and
    # time, is one row), linked to the monitor that raised them.
    """
    CREATE TABLE variable_monitors (
        charger_id TEXT NOT NULL,
        monitor_id INTEGER NOT NULL,
        component TEXT NOT NULL,
        component_instance TEXT NOT NULL,
        evse_id INTEGER NOT NULL,
        connector_id INTEGER NOT NULL,
        variable TEXT NOT NULL,
        variable_instance TEXT NOT NULL,
        type TEXT NOT NULL,
        severity INTEGER NOT NULL,
        value REAL NOT NULL,
        in_transaction INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger_id, monitor_id)
    ) WITHOUT ROWID;
    CREATE TABLE device_events (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        event_id INTEGER NOT NULL,
        at TEXT NOT NULL,
        trigger TEXT NOT NULL,
        cause INTEGER NULL,
        actual_value TEXT NOT NULL,
        tech_code TEXT NULL,
        tech_info TEXT NULL,
        cleared INTEGER NULL,
        transaction_id TEXT NULL,
        monitor_id INTEGER NULL,
        notification_type TEXT NOT NULL,
        component TEXT NOT NULL,
        component_instance TEXT NOT NULL,
        evse_id INTEGER NOT NULL,
        connector_id INTEGER NOT NULL,
        variable TEXT NOT NULL,
        variable_instance TEXT NOT NULL,
        received_at TEXT NOT NULL,
        UNIQUE (charger_id, event_id, at)
    );
    CREATE INDEX device_events_charger ON device_events (charger_id, id);
    CREATE INDEX device_events_monitor ON device_events (charger_id, monitor_id, id);
    """,
    # 9: reservations (ampgate.reservations). `id` is the reservationId sent to the charger: AUTOINCREMENT so an
    # id is never reused, even after a row is gone, and a charger never confuses a new reservation with an old
    # one. `state`: pending (ReserveNow on the wire), active, refused (the charger's status in `outcome`),
    # failed (the error code in `outcome`), ended (`end_reason`). The partial index serves the load at start
    # and the active/pending filter; the charger index serves a charger's list, newest first.
    """
    CREATE TABLE reservations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        charger_id TEXT NOT NULL,
        protocol TEXT NOT NULL,
        evse_id INTEGER NULL,
        connector_id INTEGER NULL,
        connector_type TEXT NULL,
        id_token TEXT NOT NULL,
        id_token_type TEXT NULL,
        group_id_token TEXT NULL,
        expires_at TEXT NOT NULL,
        state TEXT NOT NULL,
        outcome TEXT NULL,
        end_reason TEXT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        ended_at TEXT NULL
    );
    CREATE INDEX reservations_live ON reservations (state, id) WHERE state IN ('pending', 'active');
    CREATE INDEX reservations_charger ON reservations (charger_id, id);
    """,
    # 10: 2.0.1 display messages, customer information and firmware publishing. `display_messages` is the node's
    # view of what each charger shows (a message the charger accepted, or reported with NotifyDisplayMessages),
    # keyed by the charger's message id. `customer_information_requests` is one row per CustomerInformation
    # sent: who it was about and the charger's answer (the report's text stays in charger_report_parts, kind
    # NotifyCustomerInformation; both go together on deletion). `firmware_publications` is one row per
    # PublishFirmware sent to a local controller, its status timeline (JSON [[status, at], ...]) and the
    # locations it published; `request_id` is the row's id.
    """
    CREATE TABLE display_messages (
        charger_id TEXT NOT NULL,
        id INTEGER NOT NULL,
        priority TEXT NOT NULL,
        state TEXT NULL,
        start_at TEXT NULL,
        end_at TEXT NULL,
        transaction_id TEXT NULL,
        format TEXT NOT NULL,
        language TEXT NULL,
        content TEXT NOT NULL,
        display TEXT NULL,
        source TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger_id, id)
    ) WITHOUT ROWID;
    CREATE TABLE customer_information_requests (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        request_id INTEGER NOT NULL,
        report INTEGER NOT NULL,
        clear INTEGER NOT NULL,
        customer TEXT NOT NULL,
        status TEXT NOT NULL,
        error_code TEXT NULL,
        requested_at TEXT NOT NULL,
        answered_at TEXT NULL,
        UNIQUE (charger_id, request_id)
    );
    CREATE TABLE firmware_publications (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        location TEXT NOT NULL,
        checksum TEXT NOT NULL,
        retries INTEGER NULL,
        retry_interval_s INTEGER NULL,
        status TEXT NOT NULL,
        timeline TEXT NOT NULL,
        published_locations TEXT NULL,
        error_code TEXT NULL,
        error_message TEXT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX firmware_publications_charger ON firmware_publications (charger_id, id);
    CREATE INDEX firmware_publications_checksum ON firmware_publications (charger_id, checksum);
    """,
    # 11: commands to chargers (ampgate.commands): one row per command asked through the API or queued by a
    # feature, `seq` its order (a charger's queue is delivered by seq), `id` the command_id the API shows. The
    # partial index holds what delivery and the sweep look at: queued and sent rows.
    """
    CREATE TABLE commands (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        charger_id TEXT NOT NULL,
        action TEXT NOT NULL,
        payload TEXT NOT NULL,
        protocol TEXT NOT NULL,
        queued INTEGER NOT NULL,
        state TEXT NOT NULL,
        supersede_key TEXT NULL,
        superseded_by TEXT NULL,
        unique_id TEXT NULL,
        reply TEXT NULL,
        error_code TEXT NULL,
        error_message TEXT NULL,
        ocpp_code TEXT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NULL,
        sent_at TEXT NULL,
        finished_at TEXT NULL
    );
    CREATE INDEX commands_charger ON commands (charger_id, seq);
    CREATE INDEX commands_live ON commands (state, charger_id, seq) WHERE state IN ('queued', 'sent');
    CREATE INDEX commands_finished ON commands (finished_at) WHERE finished_at IS NOT NULL;
    """,
    # 12: connectivity history (ampgate.connectivity.history): every state change of every charger (online,
    # offline, stale) with its reason and close code, and how long the connection it ended lasted.
    """
    CREATE TABLE connectivity_history (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        at TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT NOT NULL,
        code INTEGER NULL,
        conn_id INTEGER NULL,
        protocol TEXT NULL,
        remote_address TEXT NULL,
        duration_s REAL NULL
    );
    CREATE INDEX connectivity_history_charger ON connectivity_history (charger_id, id);
    CREATE INDEX connectivity_history_at ON connectivity_history (at);
    """,
    # 13: the event log (ampgate.eventlog): every bus event with the id the log numbered it with, its type,
    # charger and time (epoch milliseconds: no text formatting per event), and its JSON; kept --events-days.
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        charger_id TEXT NULL,
        at_ms INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE INDEX events_type ON events (type, id);
    CREATE INDEX events_charger ON events (charger_id, id) WHERE charger_id IS NOT NULL;
    CREATE INDEX events_at ON events (at_ms);
    """,
    # 14: incidents (ampgate.connectivity.incidents): outages, one row each with when, how many disconnected.
    """
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        scope TEXT NOT NULL,
        severity TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT NULL,
        disconnects INTEGER NOT NULL,
        fleet INTEGER NOT NULL
    );
    """,
    # 15: site topology (ampgate.load): sites (the root of each tree: the grid connection's limits, where it is),
    # their capacity nodes (parent_id NULL: directly under the site) and where each charger is placed (node_id
    # NULL: directly under the site; one row per charger, so a charger has at most one place). Limits per phase
    # are NULL where there is none. Ids of sites and nodes are one namespace, kept by the repository.
    """
    CREATE TABLE sites (
        id TEXT PRIMARY KEY,
        name TEXT NULL,
        limit_l1_a REAL NULL,
        limit_l2_a REAL NULL,
        limit_l3_a REAL NULL,
        limit_kw REAL NULL,
        voltage_v REAL NOT NULL,
        time_zone TEXT NOT NULL,
        lat REAL NULL,
        lon REAL NULL,
        address TEXT NULL,
        city TEXT NULL,
        postal_code TEXT NULL,
        country TEXT NULL,
        ean TEXT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE capacity_nodes (
        id TEXT PRIMARY KEY,
        site_id TEXT NOT NULL,
        parent_id TEXT NULL,
        name TEXT NULL,
        limit_l1_a REAL NULL,
        limit_l2_a REAL NULL,
        limit_l3_a REAL NULL,
        limit_kw REAL NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX capacity_nodes_site ON capacity_nodes (site_id, id);
    CREATE INDEX capacity_nodes_parent ON capacity_nodes (parent_id) WHERE parent_id IS NOT NULL;
    CREATE TABLE charger_placements (
        charger_id TEXT PRIMARY KEY,
        site_id TEXT NOT NULL,
        node_id TEXT NULL,
        phases TEXT NOT NULL,
        max_a REAL NOT NULL,
        priority INTEGER NOT NULL,
        weight REAL NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX charger_placements_site ON charger_placements (site_id, charger_id);
    CREATE INDEX charger_placements_node ON charger_placements (node_id) WHERE node_id IS NOT NULL;
    """,
    # 16: utilization balancing (ampgate.availability): whether a site is shown to EV owners' apps (opt-in, off
    # by default), and the occupancy of every site per UTC hour (`hour_start` epoch seconds): connector-seconds
    # per state, added to as the node flushes (hour boundaries, every few minutes, shutdown).
    """
    ALTER TABLE sites ADD COLUMN public_recommendations INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE site_occupancy (
        site_id TEXT NOT NULL,
        hour_start INTEGER NOT NULL,
        in_use_s REAL NOT NULL,
        free_s REAL NOT NULL,
        faulted_s REAL NOT NULL,
        unavailable_s REAL NOT NULL,
        offline_s REAL NOT NULL,
        PRIMARY KEY (site_id, hour_start)
    ) WITHOUT ROWID;
    CREATE INDEX site_occupancy_hour ON site_occupancy (hour_start);
    """,
    # 17: demand-response events (ampgate.demand): a limit or reduction on a node (node_id NULL: the whole network)
    # for a window; `ref` is the external source's id (an OpenADR event interval), unique per source; baseline_kw
    # the JSON of each lowered node's draw when the event began. dr_event_points: per tick, each lowered node's
    # target and measured draw (what the event achieved).
    """
    CREATE TABLE dr_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        node_id TEXT NULL,
        limit_kw REAL NULL,
        reduce_kw REAL NULL,
        reduce_pct REAL NULL,
        starts_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        source TEXT NOT NULL,
        ref TEXT NULL,
        created_at TEXT NOT NULL,
        cancelled_at TEXT NULL,
        baseline_kw TEXT NOT NULL DEFAULT '{}'
    );
    CREATE UNIQUE INDEX dr_events_ref ON dr_events (source, ref) WHERE ref IS NOT NULL;
    CREATE INDEX dr_events_ends ON dr_events (ends_at);
    CREATE TABLE dr_event_points (
        event_id INTEGER NOT NULL,
        at TEXT NOT NULL,
        node_id TEXT NOT NULL,
        target_kw REAL NOT NULL,
        measured_kw REAL NULL,
        PRIMARY KEY (event_id, at, node_id)
    ) WITHOUT ROWID;
    """,
    # 18: each site's load per minute (ampgate.loadctl): means over the minute's ticks of the limit in force
    # (after demand response), what was allocated and what was measured, and the sessions managed; and the open
    # transactions indexed, since the ticker reads them all on every reconcile.
    """
    CREATE TABLE site_load (
        site_id TEXT NOT NULL,
        at TEXT NOT NULL,
        limit_kw REAL NULL,
        allocated_kw REAL NOT NULL,
        measured_kw REAL NULL,
        sessions INTEGER NOT NULL,
        PRIMARY KEY (site_id, at)
    ) WITHOUT ROWID;
    CREATE INDEX transactions_open ON transactions (id) WHERE stopped_at IS NULL;
    """,
    # 19: OpenADR: PRICE payloads the VEN received, per site and interval (ampgate.openadr.repository).
    """
    CREATE TABLE openadr_prices (
        site_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        interval_id INTEGER NOT NULL,
        program_id TEXT NOT NULL,
        start_at TEXT NOT NULL,
        end_at TEXT NOT NULL,
        price REAL NOT NULL,
        currency TEXT NULL,
        units TEXT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (site_id, event_id, interval_id)
    );
    CREATE INDEX openadr_prices_site_start ON openadr_prices (site_id, start_at);
    CREATE INDEX openadr_prices_event ON openadr_prices (event_id);
    """,
    # 20: firmware images (ampgate.firmware_images): an external location, or a file the node stores and serves
    # at /firmware/files/<token>/<file_name> (`token` random per image); sites' maintenance windows (ampgate.load:
    # the JSON list of {cron, duration_s}, one row per site that has any); chargers' tags (ampgate.fleet), and
    # the indexes that let a campaign select chargers by tag, vendor, model or firmware version in id order
    # (keyset pages through 100k chargers, each page an index range, never a sort).
    """
    CREATE TABLE firmware_images (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        version TEXT NOT NULL,
        vendor TEXT NULL,
        model TEXT NULL,
        release_notes TEXT NULL,
        location TEXT NULL,
        token TEXT NULL UNIQUE,
        file_path TEXT NULL,
        file_name TEXT NULL,
        original_name TEXT NULL,
        size INTEGER NULL,
        sha256 TEXT NULL,
        signing_certificate TEXT NULL,
        signature TEXT NULL,
        signed_only INTEGER NOT NULL DEFAULT 0,
        version_match TEXT NOT NULL DEFAULT 'exact',
        created_at TEXT NOT NULL
    );
    CREATE INDEX firmware_images_version ON firmware_images (version, id);
    CREATE TABLE site_maintenance_windows (
        site_id TEXT PRIMARY KEY,
        windows TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE charger_tags (
        charger_id TEXT NOT NULL,
        tag TEXT NOT NULL,
        PRIMARY KEY (charger_id, tag)
    ) WITHOUT ROWID;
    CREATE INDEX charger_tags_tag ON charger_tags (tag, charger_id);
    CREATE INDEX chargers_vendor ON chargers (vendor, id) WHERE vendor IS NOT NULL;
    CREATE INDEX chargers_model ON chargers (model, id) WHERE model IS NOT NULL;
    CREATE INDEX chargers_firmware ON chargers (firmware, id) WHERE firmware IS NOT NULL;
    """,
    # 21: firmware campaigns (ampgate.campaigns): the campaign (its spec as created, JSON), its groups, one row
    # per targeted charger (state, the current dispatch's request id, command id and payload, the update's
    # progress as JSON, the timeline of statuses), per-group per-state counters kept in the same write as every charger transition
    # (the summary reads them, never the charger rows), snapshots of the counts for progress over time, the
    # audit of every verb. Request ids are one sequence over every campaign (the next is the largest stored + 1).
    """
    CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY,
        name TEXT NULL,
        image_id INTEGER NOT NULL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL,
        paused_reason TEXT NULL,
        created_at TEXT NOT NULL,
        started_at TEXT NULL,
        finished_at TEXT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX campaigns_state ON campaigns (state, id);
    CREATE INDEX campaigns_image ON campaigns (image_id, state);
    CREATE TABLE campaign_groups (
        campaign_id INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        overridden INTEGER NOT NULL DEFAULT 0,
        started_at TEXT NULL,
        finished_at TEXT NULL,
        PRIMARY KEY (campaign_id, idx)
    ) WITHOUT ROWID;
    CREATE TABLE campaign_counts (
        campaign_id INTEGER NOT NULL,
        group_idx INTEGER NOT NULL,
        state TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (campaign_id, group_idx, state)
    ) WITHOUT ROWID;
    CREATE TABLE campaign_chargers (
        campaign_id INTEGER NOT NULL,
        charger_id TEXT NOT NULL,
        group_idx INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        site_id TEXT NULL,
        state TEXT NOT NULL,
        reason TEXT NULL,
        request_id INTEGER NULL,
        command_id TEXT NULL,
        action TEXT NULL,
        payload TEXT NULL,
        progress TEXT NOT NULL,
        timeline TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (campaign_id, charger_id)
    ) WITHOUT ROWID;
    CREATE INDEX campaign_chargers_seq ON campaign_chargers (campaign_id, seq);
    CREATE INDEX campaign_chargers_state ON campaign_chargers (campaign_id, state, seq);
    CREATE INDEX campaign_chargers_charger ON campaign_chargers (charger_id);
    CREATE UNIQUE INDEX campaign_chargers_request ON campaign_chargers (request_id) WHERE request_id IS NOT NULL;
    CREATE TABLE campaign_samples (
        campaign_id INTEGER NOT NULL,
        at TEXT NOT NULL,
        counts TEXT NOT NULL,
        PRIMARY KEY (campaign_id, at)
    ) WITHOUT ROWID;
    CREATE TABLE campaign_audit (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL,
        verb TEXT NOT NULL,
        actor TEXT NULL,
        role TEXT NULL,
        reason TEXT NULL,
        changed INTEGER NOT NULL,
        state_after TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX campaign_audit_campaign ON campaign_audit (campaign_id, id);
    """,
    # 22: OCPI 2.2.1 (ampgate.roaming): the parties we roam with, each with the hashes of the credentials tokens
    # that let it call us (the registration token A we issued, then the token it uses once registered), the
    # token we call it with, its versions URL, the version and endpoints agreed and the roles it declared; and
    # what each charger's EVSEs and connectors are (eMI3 ids, standard, format, power type, ratings), which OCPI
    # publishes and OCPP does not say.
    """
    CREATE TABLE ocpi_parties (
        id INTEGER PRIMARY KEY,
        country_code TEXT NOT NULL COLLATE NOCASE,
        party_id TEXT NOT NULL COLLATE NOCASE,
        role TEXT NOT NULL,
        name TEXT NULL,
        state TEXT NOT NULL,
        registered_by TEXT NULL,
        token_a_hash TEXT NULL UNIQUE,
        our_token_hash TEXT NULL UNIQUE,
        their_token TEXT NULL,
        versions_url TEXT NULL,
        version TEXT NULL,
        endpoints TEXT NULL,
        roles TEXT NULL,
        registered_at TEXT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX ocpi_parties_code ON ocpi_parties (country_code, party_id);
    CREATE TABLE charger_evses (
        charger_id TEXT NOT NULL,
        evse_id INTEGER NOT NULL,
        emi3_id TEXT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger_id, evse_id)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX charger_evses_emi3 ON charger_evses (emi3_id) WHERE emi3_id IS NOT NULL;
    CREATE TABLE charger_connectors (
        charger_id TEXT NOT NULL,
        evse_id INTEGER NOT NULL,
        connector_id INTEGER NOT NULL,
        standard TEXT NOT NULL,
        format TEXT NOT NULL,
        power_type TEXT NOT NULL,
        max_voltage INTEGER NOT NULL,
        max_amperage INTEGER NOT NULL,
        max_electric_power INTEGER NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger_id, evse_id, connector_id)
    ) WITHOUT ROWID;
    """,
    # 23: OCPI tokens (ampgate.roaming.token_rows): the Tokens eMSPs pushed, per owner (country code, party id)
    # and the party that pushed them, kept whole as JSON beside the columns the lookup by uid reads; and every
    # authorization of an eMSP's token at one of our chargers (whitelist, real-time answer, or a START_SESSION /
    # RESERVE_NOW command), with its authorization_reference, bound to the transaction that used it: what the
    # Sessions and CDR modules report.
    """
    CREATE TABLE ocpi_tokens (
        country_code TEXT NOT NULL COLLATE NOCASE,
        party_id TEXT NOT NULL COLLATE NOCASE,
        uid TEXT NOT NULL COLLATE NOCASE,
        type TEXT NOT NULL,
        party_ref INTEGER NOT NULL,
        valid INTEGER NOT NULL,
        whitelist TEXT NOT NULL,
        token TEXT NOT NULL,
        last_updated TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (country_code, party_id, uid, type)
    ) WITHOUT ROWID;
    CREATE INDEX ocpi_tokens_uid ON ocpi_tokens (uid);
    CREATE INDEX ocpi_tokens_party ON ocpi_tokens (party_ref);
    CREATE TABLE ocpi_authorizations (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        uid TEXT NOT NULL COLLATE NOCASE,
        token_type TEXT NOT NULL,
        party_ref INTEGER NOT NULL,
        country_code TEXT NOT NULL,
        party_id TEXT NOT NULL,
        token TEXT NOT NULL,
        auth_method TEXT NOT NULL,
        authorization_reference TEXT NULL,
        location_id TEXT NULL,
        evse_uid TEXT NULL,
        command TEXT NULL,
        response_url TEXT NULL,
        reservation_id TEXT NULL COLLATE NOCASE,
        reservation_ref INTEGER NULL,
        transaction_id INTEGER NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE INDEX ocpi_authorizations_use ON ocpi_authorizations (charger_id, uid);
    CREATE UNIQUE INDEX ocpi_authorizations_transaction ON ocpi_authorizations (transaction_id)
        WHERE transaction_id IS NOT NULL;
    CREATE INDEX ocpi_authorizations_reservation ON ocpi_authorizations (party_ref, reservation_id)
        WHERE reservation_id IS NOT NULL;
    CREATE INDEX ocpi_authorizations_reservation_ref ON ocpi_authorizations (reservation_ref)
        WHERE reservation_ref IS NOT NULL;
    """,
    # 24: cost on the charger (ampgate.costdisplay): the mode an admin set for a charger, overriding what its
    # device model says (no row: the device model decides).
    """
    CREATE TABLE charger_cost_display (
        charger_id TEXT PRIMARY KEY,
        mode TEXT NOT NULL CHECK (mode IN ('ocpp201', 'california', 'none')),
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 25: pricing as a service. The transactions' own additions (ampgate.store.transactions): each transaction's
    # charging timeline (from 2.0.1 chargingState, and from 1.6 connector statuses via ampgate.billing) and the
    # signed meter values chargers sent (2.0.1 signedMeterValue, 1.6 SignedData), what calibration law wants on a
    # bill. Billing's tables (ampgate.billing): tariffs (the OCPI tariff as JSON) and their assignments (scope
    # charger | site | id_token_group | default); a row per priced session fixing its tariff at the start (a
    # snapshot, so a later change does not reprice it), its site and zone, and when and why the session ended;
    # the first transaction billing bills (those that ended before it first ran are not billed);
    # CDRs, never updated (a correction is a credit CDR: at most one per CDR, and one CDR per session, by the
    # partial unique indexes), money as exact decimal text; each site's price signals from the API.
    """
    CREATE TABLE transaction_charging (
        transaction_id INTEGER NOT NULL,
        at TEXT NOT NULL,
        charging INTEGER NOT NULL,
        PRIMARY KEY (transaction_id, at)
    ) WITHOUT ROWID;
    CREATE TABLE signed_meter_values (
        transaction_id INTEGER NOT NULL,
        at TEXT NOT NULL,
        measurand TEXT NOT NULL,
        phase TEXT NOT NULL DEFAULT '',
        context TEXT NULL,
        format TEXT NOT NULL,
        signed_data TEXT NOT NULL,
        signing_method TEXT NULL,
        encoding_method TEXT NULL,
        public_key TEXT NULL,
        PRIMARY KEY (transaction_id, at, measurand, phase)
    ) WITHOUT ROWID;
    CREATE TABLE tariffs (
        id TEXT PRIMARY KEY,
        currency TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE tariff_assignments (
        scope TEXT NOT NULL,
        subject TEXT NOT NULL,
        tariff_id TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (scope, subject)
    ) WITHOUT ROWID;
    CREATE INDEX tariff_assignments_tariff ON tariff_assignments (tariff_id);
    CREATE TABLE billing_sessions (
        transaction_id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        site_id TEXT NULL,
        time_zone TEXT NOT NULL,
        group_id TEXT NULL,
        tariff_id TEXT NULL,
        tariff TEXT NULL,
        created_at TEXT NOT NULL,
        ended_at TEXT NULL,
        end_reason TEXT NULL
    );
    CREATE INDEX billing_sessions_open ON billing_sessions (tariff_id) WHERE ended_at IS NULL;
    CREATE TABLE billing_state (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE cdrs (
        id INTEGER PRIMARY KEY,
        transaction_id INTEGER NOT NULL,
        credit_of INTEGER NULL,
        charger_id TEXT NOT NULL,
        site_id TEXT NULL,
        evse_id INTEGER NULL,
        connector_id INTEGER NULL,
        id_token TEXT NULL,
        group_id TEXT NULL,
        authorization_reference TEXT NULL,
        started_at TEXT NOT NULL,
        stopped_at TEXT NOT NULL,
        ended_at TEXT NOT NULL,
        end_reason TEXT NOT NULL,
        energy_wh REAL NOT NULL,
        charging_time_s REAL NOT NULL,
        parking_time_s REAL NOT NULL,
        parking_after_s REAL NOT NULL,
        currency TEXT NULL,
        tariff_id TEXT NULL,
        total_cost TEXT NULL,
        total_cost_excl_vat TEXT NULL,
        tariff TEXT NULL,
        cost TEXT NULL,
        signed_meter_values TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX cdrs_session ON cdrs (transaction_id) WHERE credit_of IS NULL;
    CREATE UNIQUE INDEX cdrs_credit ON cdrs (credit_of) WHERE credit_of IS NOT NULL;
    CREATE INDEX cdrs_created ON cdrs (created_at, id);
    CREATE INDEX cdrs_charger ON cdrs (charger_id, id);
    CREATE INDEX cdrs_site ON cdrs (site_id, started_at);
    CREATE TABLE site_price_signals (
        site_id TEXT NOT NULL,
        start_at TEXT NOT NULL,
        end_at TEXT NOT NULL,
        energy_price TEXT NOT NULL,
        currency TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (site_id, currency, start_at)
    ) WITHOUT ROWID;
    """,
    # 26: OCPI Sessions, CDRs and their delivery (ampgate.roaming.billing_rows). A row per roaming session (the
    # transaction an eMSP's token started): the eMSP it belongs to, the Session as last built (what GET answers)
    # and where it happened as seen at its start (the CDR's location); the OCPI CDR of each roaming CDR as built
    # once (NULL with the reason while it cannot be, e.g. the site is not published yet), what GET /cdrs answers;
    # one delivery per (CDR, party) with its attempts, the next one's time, when it is given up, the last error
    # and the receiver's Location: the durable queue CDRs are POSTed from (money: never dropped, retried with
    # back-off); a credit's delivery waits for its original's (after_id). State: the last billing CDR looked at.
    """
    CREATE TABLE ocpi_sessions (
        transaction_id INTEGER PRIMARY KEY,
        party_ref INTEGER NOT NULL,
        status TEXT NOT NULL,
        body TEXT NOT NULL,
        place TEXT NOT NULL,
        last_updated TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX ocpi_sessions_party ON ocpi_sessions (party_ref, last_updated);
    CREATE INDEX ocpi_sessions_open ON ocpi_sessions (status) WHERE status != 'COMPLETED';
    CREATE TABLE ocpi_cdrs (
        cdr_id INTEGER PRIMARY KEY,
        party_ref INTEGER NOT NULL,
        transaction_id INTEGER NOT NULL,
        credit_of INTEGER NULL,
        body TEXT NULL,
        error TEXT NULL,
        last_updated TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX ocpi_cdrs_party ON ocpi_cdrs (party_ref, last_updated) WHERE body IS NOT NULL;
    CREATE TABLE ocpi_cdr_deliveries (
        id INTEGER PRIMARY KEY,
        cdr_id INTEGER NOT NULL,
        party_ref INTEGER NOT NULL,
        after_id INTEGER NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NULL,
        give_up_at TEXT NOT NULL,
        last_error TEXT NULL,
        last_attempt_at TEXT NULL,
        sent_at TEXT NULL,
        location TEXT NULL,
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX ocpi_cdr_deliveries_cdr ON ocpi_cdr_deliveries (cdr_id, party_ref);
    CREATE INDEX ocpi_cdr_deliveries_due ON ocpi_cdr_deliveries (next_attempt_at) WHERE state = 'pending';
    CREATE INDEX ocpi_cdr_deliveries_state ON ocpi_cdr_deliveries (state, id);
    CREATE TABLE ocpi_state (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # 27: whether OCPI publishes a site as a Location (ampgate.roaming.locations): on for every site there is,
    # as before; an operator turns it off for a private site (PATCH /api/v1/sites/{id} {"ocpi_publish": false}).
    """
    ALTER TABLE sites ADD COLUMN ocpi_publish INTEGER NOT NULL DEFAULT 1;
    """,
    # 28: API token lifecycle (ampgate.store.api_tokens). expires_at: the token is refused from then on (NULL:
    # never); revoked_at: refused since (NULL: live); last_used_at: when it last authenticated a request, written
    # at most once a minute per token (not a write per request).
    """
    ALTER TABLE api_tokens ADD COLUMN expires_at TEXT NULL;
    ALTER TABLE api_tokens ADD COLUMN revoked_at TEXT NULL;
    ALTER TABLE api_tokens ADD COLUMN last_used_at TEXT NULL;
    """,
    # 29: transaction ids are never handed out twice. A plain INTEGER PRIMARY KEY takes max(id) + 1, so once the
    # highest transaction is gone (lost with the last commits of a power cut before durable writes, or deleted)
    # its id, which a charger may still hold and send in StopTransaction, would name a new transaction.
    # AUTOINCREMENT keeps the highest id ever used in sqlite_sequence instead. SQLite cannot add it to a table:
    # create the new one, copy, drop, rename, and make the indexes again (they go with the old table). The
    # sequence starts above every transaction id any table still names, not only the transactions left.
    """
    CREATE TABLE transactions_autoincrement (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        charger_id TEXT NOT NULL,
        protocol TEXT NOT NULL,
        remote_id TEXT NULL,
        evse_id INTEGER NULL,
        connector_id INTEGER NULL,
        id_token TEXT NULL,
        started_at TEXT NOT NULL,
        stopped_at TEXT NULL,
        meter_start_wh REAL NULL,
        meter_stop_wh REAL NULL,
        meter_last_wh REAL NULL,
        energy_wh REAL NULL,
        stop_reason TEXT NULL
    );
    INSERT INTO transactions_autoincrement (id, charger_id, protocol, remote_id, evse_id, connector_id, id_token,
        started_at, stopped_at, meter_start_wh, meter_stop_wh, meter_last_wh, energy_wh, stop_reason)
    SELECT id, charger_id, protocol, remote_id, evse_id, connector_id, id_token, started_at, stopped_at,
        meter_start_wh, meter_stop_wh, meter_last_wh, energy_wh, stop_reason
    FROM transactions ORDER BY id;
    DROP TABLE transactions;
    ALTER TABLE transactions_autoincrement RENAME TO transactions;
    CREATE UNIQUE INDEX transactions_remote ON transactions (charger_id, remote_id) WHERE remote_id IS NOT NULL;
    CREATE INDEX transactions_start16 ON transactions (charger_id, connector_id, started_at);
    CREATE INDEX transactions_charger ON transactions (charger_id, id);
    CREATE INDEX transactions_started ON transactions (started_at);
    CREATE INDEX transactions_open ON transactions (id) WHERE stopped_at IS NULL;
    DELETE FROM sqlite_sequence WHERE name = 'transactions';
    INSERT INTO sqlite_sequence (name, seq) SELECT 'transactions', max(
        coalesce((SELECT max(id) FROM transactions), 0),
        coalesce((SELECT max(transaction_id) FROM meter_samples), 0),
        coalesce((SELECT max(transaction_id) FROM transaction_events), 0),
        coalesce((SELECT max(transaction_id) FROM transaction_charging), 0),
        coalesce((SELECT max(transaction_id) FROM signed_meter_values), 0),
        coalesce((SELECT max(transaction_id) FROM billing_sessions), 0),
        coalesce((SELECT max(transaction_id) FROM cdrs), 0),
        coalesce((SELECT max(transaction_id) FROM ocpi_sessions), 0),
        coalesce((SELECT max(transaction_id) FROM ocpi_cdrs), 0)
    );
    """,
    # 30: charging-station certificates (ampgate.certauthority). charger_certificates: each certificate the
    # node's CA (or the operator's signer) issued, by serial (hex), with its delivery (pending until the
    # charger answers CertificateSigned: Accepted, Rejected, or failed), when its expiry was announced
    # (certificate.expiring, once) and when a renewal was last asked. charger_installed_certificates: what a
    # charger holds as it told us (GetInstalledCertificateIds) or as we installed it (InstallCertificate,
    # with the certificate's subject and end), keyed by its CertificateHashData.
    """
    CREATE TABLE charger_certificates (
        serial TEXT PRIMARY KEY,
        charger_id TEXT NOT NULL,
        certificate_type TEXT NOT NULL,
        subject TEXT NOT NULL,
        not_before TEXT NOT NULL,
        not_after TEXT NOT NULL,
        fingerprint_sha256 TEXT NOT NULL,
        pem TEXT NOT NULL,
        issued_at TEXT NOT NULL,
        delivery TEXT NOT NULL,
        delivery_error TEXT NULL,
        expiry_warned_at TEXT NULL,
        renewal_requested_at TEXT NULL
    );
    CREATE INDEX charger_certificates_charger ON charger_certificates (charger_id, not_after);
    CREATE INDEX charger_certificates_unwarned ON charger_certificates (not_after) WHERE expiry_warned_at IS NULL;
    CREATE TABLE charger_installed_certificates (
        charger_id TEXT NOT NULL,
        certificate_type TEXT NOT NULL,
        hash_algorithm TEXT NOT NULL,
        issuer_name_hash TEXT NOT NULL,
        issuer_key_hash TEXT NOT NULL,
        serial_number TEXT NOT NULL,
        subject TEXT NULL,
        not_after TEXT NULL,
        fingerprint_sha256 TEXT NULL,
        source TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        expiry_warned_at TEXT NULL,
        PRIMARY KEY (charger_id, hash_algorithm, issuer_name_hash, serial_number)
    );
    CREATE INDEX charger_installed_certificates_unwarned ON charger_installed_certificates (not_after)
        WHERE expiry_warned_at IS NULL AND not_after IS NOT NULL;
    """,
    # 31: security profiles: the lowest OCPP security profile a charger may connect with (1 plain ws with
    # Basic auth, 2 TLS with Basic auth, 3 TLS with a client certificate); the gateway refuses a lower one.
    """
    ALTER TABLE chargers ADD COLUMN security_profile INTEGER NOT NULL DEFAULT 1
        CHECK (security_profile BETWEEN 1 AND 3);
    """,
    # 32: security-profile upgrades (ampgate.profileupgrade): one row per upgrade, its state machine's record
    # as JSON in `body`, with the columns lists and restarts select by.
    """
    CREATE TABLE security_profile_upgrades (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        charger_id TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX security_profile_upgrades_charger ON security_profile_upgrades (charger_id, id);
    CREATE INDEX security_profile_upgrades_open ON security_profile_upgrades (id)
        WHERE state IN ('configuring', 'awaiting_reconnect');
    """,
)


def connect(path: str, *, query_only: bool = False) -> sqlite3.Connection:
    """Open `path` with the store's settings: WAL, synchronous=NORMAL, a busy timeout, and driver autocommit
    (`isolation_level=None`: the store issues BEGIN/COMMIT itself, so the driver never opens a transaction
    behind its back). `query_only` makes the connection refuse writes (for the reader).

    `check_same_thread=False` because a connection is created on one thread and owned by another (the writer
    thread); each connection is still used by one thread at a time. Raises sqlite3.Error if the file cannot be
    opened or is not a database.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # WAL: readers never block the writer and the writer never blocks readers; it is a property of the
        # file, so setting it again is a no-op.
        if not query_only:
            conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL under WAL: a commit is durable against an application crash; a power cut may lose the last
        # commits but never corrupts the database. Full fsync per commit would cap a boot storm's writes.
        conn.execute("PRAGMA synchronous = NORMAL")
        if query_only:
            conn.execute("PRAGMA query_only = 1")
    except BaseException:
        conn.close()
        raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """The number of migrations applied to the database behind `conn` (0 for a new file)."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if has_table is None:
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to the newest schema; returns the version it ends at.

    Safe to call from several processes at once (the CLI and a node): the version is read again under the
    write lock (BEGIN IMMEDIATE) and the pending migrations commit together with the version bump. Raises RuntimeError if the
    file was written by a newer ampgate (more migrations than this one knows), sqlite3.Error on I/O failure.
    """
    if schema_version(conn) == len(MIGRATIONS):
        return len(MIGRATIONS)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = schema_version(conn)
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"database schema version {version} is newer than this ampgate knows ({len(MIGRATIONS)})"
            )
        for script in MIGRATIONS[version:]:
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    # sqlite3's executescript() commits any open transaction first, which would split a migration from its
    # version bump; run the statements one by one instead. Migrations contain no ';' inside literals.
    return [s.strip() for s in script.split(";") if s.strip()]
