"""Outgoing e-mail: one path for every app. `queue_email` writes the e-mail with its cause; the
`mail.tasks.send` task sends it once through Django's mail API (django-anymail picks the ESP)."""
