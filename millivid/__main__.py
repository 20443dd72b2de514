"""``python -m millivid`` is the same as the ``millivid`` command."""

from millivid.cli import main

raise SystemExit(main())
