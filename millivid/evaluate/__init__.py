"""millivid.evaluate"""
