"""``pyplot()``: matplotlib's pyplot on the file-only Agg backend, imported on first use.

Every figure millivid draws is written to a file, never shown. matplotlib is imported here, inside
the function, and not at the top of the modules that draw: with pyplot it costs ~0.6 s, and the
``millivid`` command imports every subcommand's module at start, so a top-level import would slow
every command, also those that draw nothing. No millivid imports, so every package may use it.
"""

from __future__ import annotations

from types import ModuleType


def pyplot() -> ModuleType:
    """``matplotlib.pyplot``, with the Agg backend chosen before its first import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
