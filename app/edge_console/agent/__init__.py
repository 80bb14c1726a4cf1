"""The device program: capture, inference, HTTP/WebSocket API, telemetry, mDNS advertising, simulator. Never Qt.

    cli.py          `edge-agent run` and `edge-agent simulate`; the device-terminal commands come from trust/ and
                    updates/
    cli_target.py   which agent (instance, state folder) a device-terminal command acts on, said before it acts
    config.py       settings: defaults, a TOML file, flags; each value checked against its field's type
    runtime.py      the Agent: one device's parts and their lifetimes, as services of the API application
    serve.py        `serving(config)`: one agent started, listening and announced (the tests' way in too)
    supervisor.py   the periodic background loops, restarted after a failure, with health saying so meanwhile
    sd_notify.py    systemd's readiness, watchdog and status notifications, without libsystemd
    identity.py     who this device is: a stable id on disk, and the hardware it reports
    health.py       ok, degraded or failing, always with the reasons a person needs to act
    telemetry.py    one sample a second from two pipeline snapshots and the process
    history.py      the telemetry history on the device: a bounded SQLite ring a returning console fills from
    discovery.py    the mDNS announcement (`_edgeinfer._tcp`) with id, name, model and arch
    simulate.py     a fleet of real agent processes on this machine: the demo and the integration tests
    api/            the HTTP/WebSocket API: server, routes, who may call what, connection defences
    pipeline/       source -> capture -> inference -> frame hub, and their counters
    trust/          pairings, pairing codes and their guard, `edge-agent pair | pairings | unpair | enrol`
    updates/        model updates, the whole path: upload, staging, verification, records, lifecycle, model store
"""

from edge_console import __version__ as AGENT_VERSION  # noqa: N812 - the name the API reports it under

__all__ = ["AGENT_VERSION"]
