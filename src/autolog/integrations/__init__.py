"""One module per framework; each registers an :class:`~autolog.integrations.base.Integration`."""
