"""Desired vs observed -> the Plan's changes (pure given what was observed; reads, never writes).

:mod:`.planner` orders a Service's changes, :mod:`.groups` keeps the shared instance groups and
:mod:`.addresses` the Service's IP and its reservation.
"""

from lbprov_gcp.diff.addresses import UNKNOWN_IP, AddressPlan
from lbprov_gcp.diff.groups import ForeignInstanceGroup
from lbprov_gcp.diff.planner import Planner

__all__ = ["UNKNOWN_IP", "AddressPlan", "ForeignInstanceGroup", "Planner"]
