//! The OCPP messages the Rust benches send (`bench/codec.rs`, `bench/flow.rs`), so both measure the same bytes.

/// A Heartbeat CALL as chargers send it (UUID message id): ~60 bytes, most of an idle fleet's load.
pub fn heartbeat() -> String {
    r#"[2,"b1f5a0e2-7c1d-4a8e-9f3b-2d6c8e4a1b7f","Heartbeat",{}]"#.to_owned()
}

/// A MeterValues CALL with thirteen sampled values: ~1.5 KB, most of a charging fleet's bytes.
pub fn meter_values() -> String {
    let measurands = [
        ("Energy.Active.Import.Register", "Wh", "15234.7"),
        ("Power.Active.Import", "W", "11040.2"),
        ("Current.Import", "A", "16.01"),
        ("Voltage", "V", "229.8"),
    ];
    let mut sampled = Vec::new();
    for phase in ["L1", "L2", "L3"] {
        for (m, unit, v) in measurands {
            sampled.push(format!(
                r#"{{"value":"{v}","context":"Sample.Periodic","measurand":"{m}","phase":"{phase}","unit":"{unit}"}}"#
            ));
        }
    }
    // State of charge is per vehicle, not per phase.
    sampled.push(
        r#"{"value":"54","context":"Sample.Periodic","measurand":"SoC","location":"EV","unit":"Percent"}"#
            .to_owned(),
    );
    format!(
        r#"[2,"6f1d2c3b-9a8e-4f7d-8c6b-5a4e3d2c1b0a","MeterValues",{{"connectorId":1,"transactionId":982341,"meterValue":[{{"timestamp":"2025-11-27T07:40:00.000Z","sampledValue":[{}]}}]}}]"#,
        sampled.join(",")
    )
}
