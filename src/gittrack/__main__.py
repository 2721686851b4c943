import sys

from gittrack.cli.main import main

sys.exit(main())
