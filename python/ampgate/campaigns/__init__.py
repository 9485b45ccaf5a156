"""Firmware campaigns: staged, self-pausing rollouts of one firmware image over a selection of chargers.

`charger` is one charger's update as a pure state machine; `model` the campaign's rules (validation, groups,
conditions, verbs, dispatch rate); `ports` what the campaigns need from the rest of the node; `repository` the
tables with their per-group counters; `memory` the runner's mirror of the active campaigns; `runner` the trio
task that carries out the API's verbs and moves campaigns on, with its parts: `tracker` (a change kept in memory,
the tables and on the bus together), `dispatch` (who gets an update now, and sending it through the command
queue) and `following` (the bus's statuses, boots and command outcomes fed to each charger's machine);
`status_view` the CLI's `ampgate firmware status`.
"""

from ampgate.campaigns.model import CampaignSpec
from ampgate.campaigns.repository import CampaignRepository
from ampgate.campaigns.runner import Actor, CampaignRunner

__all__ = ["Actor", "CampaignRepository", "CampaignRunner", "CampaignSpec"]
