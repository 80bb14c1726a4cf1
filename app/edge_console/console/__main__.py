import sys

from edge_console.console.cli import main

sys.exit(main())
