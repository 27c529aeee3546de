"""Prebookings."""
