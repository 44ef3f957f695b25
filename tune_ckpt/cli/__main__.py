"""``python -m tune_ckpt.cli``: the same as the ``tune-ckpt`` command."""

import sys

from tune_ckpt.cli import main

sys.exit(main())
