"""Published weight files (``files``: where each comes from, its digest, the one folder every
user looks in; ``fetch``: download and check them) and LPIPS (``lpips``), the one network built
from them that both the evaluation (metric) and the autoencoder (perceptual loss) use. Imports
nothing from millivid but ``atomic``, so every package may use it.
"""
