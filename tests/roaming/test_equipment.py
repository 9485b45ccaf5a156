"""What an admin may say a charger's EVSEs are: every refusal names its field."""

from __future__ import annotations

import pytest

from ampgate.errors import ValidationError
from ampgate.roaming.equipment import ConnectorSpec, EvseSpec, validate
from ampgate.roaming.types import ConnectorFormat, ConnectorType, PowerType


def c(connector_id: int = 1, **kw: int) -> ConnectorSpec:
    values = {"max_voltage": 230, "max_amperage": 32} | kw
    return ConnectorSpec(
        connector_id=connector_id,
        standard=ConnectorType.IEC_62196_T2,
        format=ConnectorFormat.SOCKET,
        power_type=PowerType.AC_3_PHASE,
        **values,
    )


def test_a_good_description_is_normalised() -> None:
    out = validate(
        [
            EvseSpec(evse_id=2, connectors=(c(2), c(1)), emi3_id="nl*amp*e9*2"),
            EvseSpec(evse_id=1, connectors=(c(),)),
        ],
        "ocpp2.0.1",
    )
    assert [e.evse_id for e in out] == [1, 2]
    assert out[1].emi3_id == "NL*AMP*E9*2" and [k.connector_id for k in out[1].connectors] == [1, 2]


@pytest.mark.parametrize(
    ("evses", "protocol", "field"),
    [
        ([EvseSpec(evse_id=0, connectors=(c(),))], None, "evses[0].evse_id"),
        (
            [EvseSpec(evse_id=1, connectors=(c(),)), EvseSpec(evse_id=1, connectors=(c(),))],
            None,
            "evses[1].evse_id",
        ),
        ([EvseSpec(evse_id=1, connectors=())], None, "evses[0].connectors"),
        ([EvseSpec(evse_id=1, connectors=(c(), c()))], None, "evses[0].connectors[1].connector_id"),
        ([EvseSpec(evse_id=1, connectors=(c(max_voltage=0),))], None, "evses[0].connectors[0].max_voltage"),
        (
            [EvseSpec(evse_id=1, connectors=(c(max_amperage=32000),))],
            None,
            "evses[0].connectors[0].max_amperage",
        ),
        (
            [EvseSpec(evse_id=1, connectors=(c(max_electric_power=0),))],
            None,
            "evses[0].connectors[0].max_electric_power",
        ),
        ([EvseSpec(evse_id=1, connectors=(c(),), emi3_id="NL-AMP-1")], None, "evses[0].emi3_id"),
        (
            [
                EvseSpec(evse_id=1, connectors=(c(),), emi3_id="NL*AMP*E1"),
                EvseSpec(evse_id=2, connectors=(c(),), emi3_id="nl*amp*e1"),
            ],
            None,
            "evses[1].emi3_id",
        ),
        # 1.6: no EVSE level, so an EVSE is one connector of its own number.
        ([EvseSpec(evse_id=1, connectors=(c(1), c(2)))], "ocpp1.6", "evses[0].connectors"),
        ([EvseSpec(evse_id=2, connectors=(c(1),))], "ocpp1.6", "evses[0].connectors"),
    ],
)
def test_a_bad_description_names_its_field(evses: list[EvseSpec], protocol: str | None, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        validate(evses, protocol)
    assert err.value.field == field
