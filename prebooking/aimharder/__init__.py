"""The AimHarder pages: linked accounts, box rules, the class picker, cancelling at the gym.

They sit on the prebooking core; the transport (client, provider) is prebooking.providers.aimharder.
"""
