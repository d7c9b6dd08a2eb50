"""``python -m oodflow.smoke CONFIG``: see :mod:`oodflow.smoke.run`."""

import sys

from oodflow.smoke.run import main

sys.exit(main())
