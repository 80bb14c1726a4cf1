"""What every headless release command works with: the console's data folder, its release library, its pins and
TLS identity, and its audit log (`edge-console release|push|rollback|audit|pairings ...`, client/releases/cli.py).
Its own module so that the commands split into other modules (library_cli.py, trust_cli.py) can take it without
importing the dispatcher that imports them.
"""

from __future__ import annotations

import getpass
import socket
from pathlib import Path

from edge_console.client.releases.audit_merge import console_audit
from edge_console.client.releases.library import ReleaseLibrary
from edge_console.client.trust_store import PinStore, TlsContexts, console_identity


class Context:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.database = data_dir / "console.sqlite"
        self.library = ReleaseLibrary(data_dir)
        self.pins = PinStore(self.database)
        self.identity = console_identity(data_dir)
        self.contexts = TlsContexts(self.identity)
        self.audit = console_audit(data_dir)

    def log(self, event: str, **details) -> None:
        self.audit.append(f"console {socket.gethostname()} ({getpass.getuser()})", event, **details)
