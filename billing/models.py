"""Billing state mirrored from Stripe."""
