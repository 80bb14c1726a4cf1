"""Model updates on the device, the whole path in one folder: a release arrives (tus upload), is staged and
checked while it arrives, verified with TUF, installed into the model store, watched in probation, and rolled back.

    _uploads.py           resumable uploads of release files (tus 1.0.0): routes, space reserved, expiry
    _follower.py          staging a release from its upload while the bytes arrive
    _service.py           UpdateManager: staged -> verified -> checked -> active (probation) -> confirmed
    _states.py            the two state machines (an update record's steps, the model lifecycle) as transition
                          tables, and the check every move goes through
    _records.py           one record per update attempt, persisted at every step; the events consoles follow
    _lifecycle.py         which model runs: start-up recovery, activation into probation, the watchdog, rollback
    _model_store.py       verified models only (a checked bundle is moved in, not copied), and the one state file
                          that says which runs
    _cli.py               `edge-agent install | versions | rollback | trust-root | audit` on the device's terminal
    _versions_summary.py  `edge-agent versions` as a person reads it

The HTTP half (install, versions, rollback, events) is agent/api/update_routes.py. The modules are private (their
names start with `_`); the rest of the agent uses the names below. Tests may reach inside.
"""

from edge_console.agent.updates._cli import add_update_commands, run_update_command
from edge_console.agent.updates._lifecycle import ModelLifecycle, factory_entry
from edge_console.agent.updates._model_store import ModelStore
from edge_console.agent.updates._service import UpdateManager, UpdateRejected, run_in_loop
from edge_console.agent.updates._uploads import UploadStore, add_upload_routes

__all__ = [
    "ModelLifecycle",
    "ModelStore",
    "UpdateManager",
    "UpdateRejected",
    "UploadStore",
    "add_update_commands",
    "add_upload_routes",
    "factory_entry",
    "run_in_loop",
    "run_update_command",
]
