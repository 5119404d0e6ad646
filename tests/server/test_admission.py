"""The door's knowledge of tokens (``admission.KnownTokens``) over a real token table, and how
it reads a request's credential."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from autolog.server import auth
from autolog.server.admission import ClientCounts, KnownTokens, credential
from autolog.server.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'tokens.db'}")
    database.migrate()
    yield database
    database.dispose()


class Counted:
    """``auth.active_digests`` over ``db``, counting the queries."""

    def __init__(self, db: Database):
        self.db = db
        self.queries = 0

    def __call__(self) -> set[str]:
        self.queries += 1
        return auth.active_digests(self.db)


def test_a_token_created_elsewhere_is_known_at_its_first_request(db: Database) -> None:
    load = Counted(db)
    known = KnownTokens(load, spacing=0.0)

    async def scenario() -> list[bool]:
        first, _ = auth.create_token(db, "first", "read")
        seen = [await known.knows(first)]
        second, _ = auth.create_token(db, "second", "read")  # as another process would
        seen.append(await known.knows(second))
        seen.append(await known.knows(first))
        return seen

    assert asyncio.run(scenario()) == [True, True, True]
    assert load.queries == 2  # the first request, and the unknown second token; then cached


def test_made_up_tokens_cost_a_bounded_number_of_queries(db: Database) -> None:
    auth.create_token(db, "real", "write")
    load = Counted(db)
    known = KnownTokens(load, spacing=0.05)

    async def scenario() -> list[bool]:
        return await asyncio.gather(*(known.knows(f"alg_made-up-{i}") for i in range(2000)))

    assert asyncio.run(scenario()) == [False] * 2000
    assert load.queries <= 3, load.queries  # one reload serves every request waiting on it


def test_a_revoked_token_stops_being_admitted_within_the_ttl(db: Database) -> None:
    secret, _ = auth.create_token(db, "leaving", "write")
    known = KnownTokens(lambda: auth.active_digests(db), ttl=0.2, spacing=0.0)

    async def scenario() -> tuple[bool, bool, bool]:
        before = await known.knows(secret)
        auth.revoke_token(db, "leaving")
        cached = await known.knows(secret)  # the copy is fresh: still admitted (routes refuse)
        await asyncio.sleep(0.3)
        return before, cached, await known.knows(secret)

    assert asyncio.run(scenario()) == (True, True, False)


def test_a_database_that_fails_keeps_the_last_copy(db: Database,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    secret, _ = auth.create_token(db, "kept", "write")
    broken = {"now": False}

    def load() -> set[str]:
        if broken["now"]:
            raise RuntimeError("database is down")
        return auth.active_digests(db)

    known = KnownTokens(load, ttl=0.0, spacing=0.0)

    async def scenario() -> tuple[bool, bool, bool]:
        ok = await known.knows(secret)
        broken["now"] = True
        return ok, await known.knows(secret), await known.knows("alg_unknown")

    assert asyncio.run(scenario()) == (True, True, False)
    assert "could not reload the active tokens: database is down" in caplog.text


def test_the_credential_is_read_as_the_routes_read_it() -> None:
    name = "autolog_session"
    assert credential({b"authorization": b"Bearer abc"}, name) == ("abc", "bearer")
    assert credential({b"authorization": b"bearer abc", b"cookie": b"autolog_session=c"},
                      name) == ("abc", "bearer")  # a bearer token wins over the cookie
    assert credential({b"authorization": b"Basic dTpw", b"cookie": b"x=1; autolog_session=c"},
                      name) == ("c", "cookie")
    assert credential({b"authorization": b"Bearer "}, name) == ("", "none")
    assert credential({b"cookie": b"autolog_session_5050=c"}, name) == ("", "none")
    assert credential({}, name) == ("", "none")


def test_client_counts_limit_one_address_and_all() -> None:
    counts = ClientCounts(per_client=2, total=3)
    assert [counts.take("a"), counts.take("a"), counts.take("a")] == [None, None, "client"]
    assert [counts.take("b"), counts.take("c")] == [None, "total"]
    counts.give_back("a")
    assert counts.take("c") is None and counts.counts == {"a": 1, "b": 1, "c": 1}
