import sys

from roadpulse.cli import main

sys.exit(main())
