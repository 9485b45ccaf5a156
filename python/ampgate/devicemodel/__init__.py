"""Each charger's device model as the node knows it: 2.0.1 components, EVSEs, variables and their attributes
and characteristics (from NotifyReport, GetVariables and SetVariables), and 1.6 configuration keys (from
GetConfiguration and ChangeConfiguration) in the same shape. Other parts read capabilities from it (the
ItemsPerMessage / BytesPerMessage limits requests are split by, among others)."""

from ampgate.devicemodel.handlers import DeviceModelHandlers
from ampgate.devicemodel.limits import split_request
from ampgate.devicemodel.repository import DeviceModelRepository, VariableRow
from ampgate.devicemodel.service import Capabilities, DeviceModel

__all__ = [
    "Capabilities",
    "DeviceModel",
    "DeviceModelHandlers",
    "DeviceModelRepository",
    "VariableRow",
    "split_request",
]
