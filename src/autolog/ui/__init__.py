"""``autolog ui``: the web UI over the local store (and the bundle ``autolog server`` serves).

Nothing heavy is imported here: the CLI builds its parser from :mod:`.cli`, and the web stack
(FastAPI, uvicorn, SQLAlchemy) loads only when the command runs.
"""
