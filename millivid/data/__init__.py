"""millivid.data"""
