//! The simulated charger's settings, as the CSMS reads and writes them: the 1.6 configuration keys
//! (GetConfiguration, ChangeConfiguration) and the 2.0.1 device model's variables (GetVariables, SetVariables),
//! both over the same few settings (heartbeat interval, meter value period, connectors, model).

use serde_json::Value;

use super::Sim;

/// A CSMS CALL refused: (the CALLERROR code, "" for the protocol's format violation; why).
pub(super) type Refusal = (&'static str, String);

fn missing(field: &str) -> Refusal {
    ("", format!("{field} missing or of the wrong type"))
}

impl Sim {
    /// The 1.6 GetConfiguration reply: every key, or the keys asked for and the unknown ones apart.
    pub(super) fn get_configuration(&self, idx: usize, b: &Value) -> Result<String, Refusal> {
        let asked: Option<Vec<String>> = b.get("key").and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        });
        let table = self.config_table(idx);
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        match asked {
            None => known.extend(table.iter().cloned()),
            Some(keys) if keys.is_empty() => known.extend(table.iter().cloned()),
            Some(keys) => {
                for k in keys {
                    match table.iter().find(|(name, ..)| *name == k) {
                        Some(e) => known.push(e.clone()),
                        None => unknown.push(k),
                    }
                }
            }
        }
        let keys: Vec<Value> = known
            .into_iter()
            .map(|(k, ro, v)| serde_json::json!({"key": k, "readonly": ro, "value": v}))
            .collect();
        let mut out = serde_json::json!({"configurationKey": keys});
        if !unknown.is_empty() {
            out["unknownKey"] = serde_json::json!(unknown);
        }
        Ok(out.to_string())
    }

    /// The 1.6 ChangeConfiguration reply.
    pub(super) fn change_configuration(
        &mut self,
        idx: usize,
        b: &Value,
    ) -> Result<String, Refusal> {
        let key = b
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("key"))?;
        let value = b
            .get("value")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("value"))?;
        let status = self.set_setting(idx, key, value);
        Ok(format!(r#"{{"status":"{status}"}}"#))
    }

    /// The 2.0.1 GetVariables reply: a result per variable asked for.
    pub(super) fn get_variables(&self, idx: usize, b: &Value) -> Result<String, Refusal> {
        let items = b
            .get("getVariableData")
            .and_then(Value::as_array)
            .ok_or_else(|| missing("getVariableData"))?;
        let mut results = Vec::new();
        for item in items {
            let comp = item.get("component").cloned().unwrap_or(Value::Null);
            let var = item.get("variable").cloned().unwrap_or(Value::Null);
            let (cn, vn) = (name_of(&comp), name_of(&var));
            let mut r = serde_json::json!({"component": comp, "variable": var});
            match self.variable(idx, cn, vn) {
                Ok(v) => {
                    r["attributeStatus"] = "Accepted".into();
                    r["attributeValue"] = v.into();
                }
                Err(s) => r["attributeStatus"] = s.into(),
            }
            results.push(r);
        }
        Ok(serde_json::json!({"getVariableResult": results}).to_string())
    }

    /// The 2.0.1 SetVariables reply: a status per variable set.
    pub(super) fn set_variables(&mut self, idx: usize, b: &Value) -> Result<String, Refusal> {
        let items = b
            .get("setVariableData")
            .and_then(Value::as_array)
            .ok_or_else(|| missing("setVariableData"))?;
        let mut results = Vec::new();
        for item in items {
            let comp = item.get("component").cloned().unwrap_or(Value::Null);
            let var = item.get("variable").cloned().unwrap_or(Value::Null);
            let value = item
                .get("attributeValue")
                .and_then(Value::as_str)
                .unwrap_or("");
            let status = match self.variable(idx, name_of(&comp), name_of(&var)) {
                Err(s) => s,
                Ok(_) => match self.set_setting(idx, var_key(name_of(&var)), value) {
                    "Accepted" => "Accepted",
                    _ => "Rejected",
                },
            };
            results.push(serde_json::json!({
                "attributeStatus": status, "component": comp, "variable": var
            }));
        }
        Ok(serde_json::json!({"setVariableResult": results}).to_string())
    }

    /// The 1.6 configuration keys of a simulated charger: (key, readonly, value).
    fn config_table(&self, idx: usize) -> Vec<(String, bool, String)> {
        let c = &self.ch[idx];
        vec![
            (
                "HeartbeatInterval".into(),
                false,
                format!("{}", c.hb_interval.round() as i64),
            ),
            (
                "MeterValueSampleInterval".into(),
                false,
                format!("{}", c.meter_period.round() as i64),
            ),
            (
                "NumberOfConnectors".into(),
                true,
                self.cfg.connectors.to_string(),
            ),
            ("AuthorizeRemoteTxRequests".into(), false, "false".into()),
        ]
    }

    /// Set a writable setting: Accepted, Rejected (read-only or a bad value) or NotSupported (unknown).
    fn set_setting(&mut self, idx: usize, key: &str, value: &str) -> &'static str {
        let c = &mut self.ch[idx];
        match key {
            "HeartbeatInterval" | "MeterValueSampleInterval" => match value.trim().parse::<u32>() {
                Ok(v) if v > 0 => {
                    if key == "HeartbeatInterval" {
                        c.hb_interval = f64::from(v);
                    } else {
                        c.meter_period = f64::from(v);
                    }
                    "Accepted"
                }
                _ => "Rejected",
            },
            "AuthorizeRemoteTxRequests" => "Accepted",
            "NumberOfConnectors" => "Rejected",
            _ => "NotSupported",
        }
    }

    /// A 2.0.1 variable's value, or the status saying why there is none.
    fn variable(
        &self,
        idx: usize,
        component: &str,
        variable: &str,
    ) -> Result<String, &'static str> {
        let c = &self.ch[idx];
        match (component, variable) {
            ("OCPPCommCtrlr", "HeartbeatInterval") => {
                Ok(format!("{}", c.hb_interval.round() as i64))
            }
            ("SampledDataCtrlr", "TxUpdatedInterval") => {
                Ok(format!("{}", c.meter_period.round() as i64))
            }
            ("ChargingStation", "Model") => Ok(self.cfg.model.clone()),
            ("OCPPCommCtrlr" | "SampledDataCtrlr" | "ChargingStation", _) => Err("UnknownVariable"),
            _ => Err("UnknownComponent"),
        }
    }
}

fn name_of(v: &Value) -> &str {
    v.get("name").and_then(Value::as_str).unwrap_or("")
}

/// The 1.6 key a 2.0.1 variable maps to in the simulated settings.
fn var_key(variable: &str) -> &str {
    match variable {
        "TxUpdatedInterval" => "MeterValueSampleInterval",
        other => other,
    }
}
