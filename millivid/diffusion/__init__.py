"""millivid.diffusion"""
