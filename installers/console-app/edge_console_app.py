"""The frozen console's entry point (PyInstaller): `edge-console` itself, and `-m edge_console.<module> ...`.

In a frozen app `sys.executable` is this program, not a Python. The console starts its demo fleet as
`sys.executable -m edge_console.agent.cli simulate ...`, and the simulator starts each agent the same way, so this
program answers `-m <module>` for the product's own modules as a Python would: it runs that module as __main__.
Nothing else is accepted after `-m`: the app is not a general Python interpreter.
"""

from __future__ import annotations

import os
import runpy
import sys


def main() -> int:
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:  # a windowed app (Windows, macOS) may have none: a print must not fail
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - for the life of the process
    if len(sys.argv) >= 3 and sys.argv[1] == "-m":
        module = sys.argv[2]
        if not module.startswith("edge_console."):
            print(f"edge-console: -m runs the product's own modules only, not {module!r}", file=sys.stderr)
            return 2
        sys.argv = [module, *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)  # its own sys.exit() ends the process
        return 0
    from edge_console.console.cli import main as console_main

    return console_main()


if __name__ == "__main__":
    sys.exit(main())
