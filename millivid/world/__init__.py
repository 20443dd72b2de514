"""millivid.world"""
