"""millivid.rollout"""
