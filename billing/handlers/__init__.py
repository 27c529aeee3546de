"""Stripe event handlers: one small function per event type, grouped by the object they change."""
