"""millivid.train"""
