"""``autolog ui``'s side of the shared application: the local store behind the server's API.

:class:`LocalContext` stands in for the server's context: the database is the store's index
(:mod:`.index`), the one credential is a random token made at start (Jupyter-style, in the URL
that ``autolog ui`` opens), edits are appended to the run's journal, and files are read from the
run's ``artifacts/`` directory.
"""

from __future__ import annotations

import getpass
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from ..journal import edits
from ..journal.files import ARTIFACTS
from ..server import query
from ..server.admission import digest
from ..server.settings import ServerConfig
from ..server.storage import PathRejected, check_path
from .index import Index

__all__ = ["LocalContext"]


class LocalContext:
    mode = "local"

    def __init__(self, root: Path, *, token: str | None = None, port: int = 0,
                 config: ServerConfig | None = None, index: Index | None = None):
        self.root = Path(root)
        self.index = index or Index(self.root)
        self.db = self.index.db
        self.config = config or ServerConfig()
        self.token = token or secrets.token_urlsafe(32)
        self.revision = self.db.revision()
        # one cookie per port: two `autolog ui` on one machine must not sign each other out
        self.cookie_name = f"autolog_session_{port}" if port else "autolog_session"
        self._user = {"name": _user(), "scope": "write"}

    def authenticate(self, secret: str) -> dict[str, Any] | None:
        if secret and hmac.compare_digest(secret.encode("utf-8", "surrogatepass"),
                                          self.token.encode()):
            return dict(self._user)
        return None

    def token_digests(self) -> set[str]:
        """The one token's SHA-256 (what the door admits)."""
        return {digest(self.token)}

    def edit(self, run: str, changes: Any) -> dict[str, Any]:
        with self.db.read() as conn:
            run_id = query.find_run_id(conn, run)
        fields = changes.model_dump(exclude_unset=True)
        events = edits.edit_events(name=fields.get("name"), tags=fields.get("tags"),
                                   remove_tags=fields.get("remove_tags"),
                                   note=fields.get("note"), deleted=fields.get("deleted"))
        if events:
            size = edits.append_events(self.root / run_id, events)
            self.index.refresh_run(run_id, size)
        return query.get_run(self.db, run_id)

    def before_history(self, run_ids: list[str]) -> None:
        self.index.ensure_points(run_ids)

    def list_files(self, run: str) -> tuple[str, list[dict[str, Any]]]:
        with self.db.read() as conn:
            run_id = query.find_run_id(conn, run)
        base = self.root / run_id / ARTIFACTS
        found: list[dict[str, Any]] = []
        for directory, _, names in os.walk(base):
            for name in names:
                path = Path(directory) / name
                try:
                    info = path.lstat()
                except OSError:
                    continue
                if path.is_symlink() or not path.is_file():
                    continue
                found.append({"path": path.relative_to(base).as_posix(), "size": info.st_size,
                              "sha256": None, "updated": int(info.st_mtime * 1000)})
        found.sort(key=lambda f: str(f["path"]))
        return run_id, found

    def find_file(self, run_id: str, path: str) -> Path | None:
        """The artifact file, never one outside the run's ``artifacts/`` (symlinks checked)."""
        try:
            parts = check_path(path)
        except PathRejected:
            return None
        base = (self.root / run_id / ARTIFACTS).resolve()
        target = base.joinpath(*parts)
        try:
            resolved = target.resolve()
        except (OSError, RuntimeError):
            return None
        if not resolved.is_relative_to(base) or not resolved.is_file():
            return None
        return resolved

    def close(self) -> None:
        self.index.stop()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no name for this uid (containers)
        return "local"
