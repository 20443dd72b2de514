"""millivid.autoencoder"""
