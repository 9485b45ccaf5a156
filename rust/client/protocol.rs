//! The OCPP version a client connection speaks.

/// The OCPP version a simulated charger speaks (its WebSocket subprotocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Ocpp16,
    Ocpp201,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ocpp1.6" => Some(Self::Ocpp16),
            "ocpp2.0.1" => Some(Self::Ocpp201),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Ocpp16 => "ocpp1.6",
            Self::Ocpp201 => "ocpp2.0.1",
        }
    }
}
