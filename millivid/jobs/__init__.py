"""The experiment-``Config``-aware layer above the model and autoencoder packages.

``video_task``: the video model's training task (``VideoTask``) and ``build_video_model``;
``autoencoder``: the autoencoder's jobs (train, load, encode a latent cache, reconstruct). They
read ``millivid.presets.Config``; the packages below them (model, autoencoder, plan, diffusion,
train) never import the presets, so every import arrow points down (docs/ARCHITECTURE.md).
"""
