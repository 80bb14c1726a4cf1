"""The scripted faults. Each takes the site, a seeded `random.Random` and a number of trials, injects the fault,
and returns a FaultResult: how many trials, how many the product survived, whether a model was lost, and times.

Mechanisms (no `tc netem` on these machines):
    link state         the device's port on the switch (bridge) set down / up: no carrier, packets lost
    nft reset          inside the device's namespace, every TCP segment to the agent answered with a reset
    nft rate limit     inside the device's namespace, TCP to the agent policed to a rate (slow, lossy link)
    nft bridge filter  on the switch, mDNS (UDP 5353, 224.0.0.0/4) dropped between every port
    SIGKILL            power cut of the agent process (kill -9), then a restart on the same state folder
    tmpfs              the device's state folder on a small filesystem, filled by another writer
    libfaketime        the agent's wall clock off by hours (LD_PRELOAD)
"""

from __future__ import annotations

from .checks import check_device, general
from .faults_device import clock_skew, disk_full, kill_9_at_steps
from .faults_hostile import hostile_clients
from .faults_network import (
    connection_reset_upload,
    discovery,
    greedy_console,
    link_flap_activation,
    link_flap_streaming,
    link_flap_upload,
    multicast_blocked,
    not_an_agent,
)

__all__ = ["check_device", "general", "discovery", "multicast_blocked", "not_an_agent", "link_flap_streaming",
           "link_flap_upload", "connection_reset_upload", "link_flap_activation", "kill_9_at_steps", "disk_full",
           "clock_skew", "greedy_console", "hostile_clients"]
