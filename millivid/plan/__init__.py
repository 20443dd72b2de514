"""millivid.plan"""
