import sys

from roadpulse.dashboards.build import main

sys.exit(main())
