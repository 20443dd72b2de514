"""millivid.model"""
