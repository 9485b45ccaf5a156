"""Firmware campaigns: staged, self-pausing rollouts of one firmware image over a selection of chargers.

`charger` is one charger's update as a pure state machine; `model` the campaign's rules (validation, groups,
conditions, verbs, dispatch rate); `repository` the tables with their per-state counters; `runner` the trio
task that follows the bus and dispatches through the command queue; `service` the verbs the API calls.
"""
