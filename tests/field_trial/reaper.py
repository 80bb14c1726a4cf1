"""A detached watcher: when the process that built a simulated site dies without cleaning up (kill -9), remove
everything of that run (netns.clean_run). Started by `Site`, stopped by `Site.close()`.

    python -m tests.field_trial.reaper OWNER_PID RUN_TAG
"""

from __future__ import annotations

import os
import signal
import sys
import time

from tests.field_trial.netns import NAME, clean_run


def main(argv: list[str]) -> int:
    owner, tag = int(argv[0]), argv[1]
    if not NAME.match(tag + "-") or int(NAME.match(tag + "-").group(1)) != owner:
        return 2  # only ever a run named after its owner
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the owner cleaned up itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the owner: it cleans up, then stops us
    while True:
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    clean_run(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
