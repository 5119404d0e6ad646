"""One module per remote backend; each registers a :class:`~autolog.backends.base.Backend`.

``local`` is not among them: it is the journal every run writes (:mod:`autolog.store`).
"""
