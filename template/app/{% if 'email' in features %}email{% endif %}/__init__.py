"""E-mail: messages from Jinja2 templates, delivered by a backend (the log, or SMTP).

Services never send in the request's time: they hand a message to an `Outbox`
(`app.email.outbox`), which queues it as a job that retries (with the `jobs` feature) or
delivers it after the response has gone (failures are logged).
`app.core.config` imports `app.email.message`, so this package imports nothing itself.
"""
