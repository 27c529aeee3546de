"""Signals other apps may listen to; prebooking itself knows none of its listeners."""

from django.dispatch import Signal

# Sent by services.create_prebooking inside its transaction, with `prebooking`: the bundled
# demo gym (devgyms) learns the class it is to open from it.
prebooking_created = Signal()
