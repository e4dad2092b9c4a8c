"""Versioned SQL migrations, applied at start under an advisory lock.

Each file ``migrations/NNNN_name.sql`` is applied once, in order of NNNN, inside one
transaction with its row in ``schema_migrations``. The advisory lock makes a second
process that starts on the same database wait and then find nothing left to do.
"""

from __future__ import annotations

import logging
import re
from importlib import resources

from seventweets.storage.database import Database

log = logging.getLogger(__name__)

# Any constant works as long as every SevenTweets node uses the same one; this is
# int.from_bytes(b"7tweets", "big").
MIGRATION_LOCK_ID = 15529946588722291

_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def load_migrations() -> list[tuple[int, str, str]]:
    """Return (version, file name, SQL) of every migration file, lowest version first."""
    found = []
    for entry in (
        resources.files("seventweets.storage").joinpath("migrations").iterdir()
    ):
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(
                (int(match.group(1)), entry.name, entry.read_text(encoding="utf-8"))
            )
    return sorted(found)


async def migrate(database: Database) -> list[int]:
    """Apply every migration the database lacks; return the versions applied."""
    applied_now = []
    async with database.transaction() as cursor:
        await cursor.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        await cursor.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await cursor.execute("SELECT version FROM schema_migrations")
        applied = {row[0] for row in await cursor.fetchall()}

        for version, file_name, sql in load_migrations():
            if version in applied:
                continue
            await cursor.execute(sql)
            await cursor.execute(
                "INSERT INTO schema_migrations (version) VALUES (%s)", (version,)
            )
            log.info("migration applied version=%s file=%s", version, file_name)
            applied_now.append(version)
    return applied_now
