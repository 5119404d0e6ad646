"""Schemathesis over a live server's OpenAPI document with every check it has (``--checks
all``): no 5xx; every answer as documented (status, headers, content type, body); data the
document calls valid accepted and data it calls invalid refused; ``Allow`` on every 405; auth
not ignored. Shared by the server's and ``autolog ui``'s fuzz tests.

Some statuses are expected for valid data on three operations, because JSON Schema cannot
say when they happen: ``GET /api/v1/runs`` answers 400 for a ``filter`` expression, sort,
column list or page token that does not parse (a grammar), ``GET /api/v1/histories`` 400 for a
run id prefix that several stored runs share (a property of the store), and a file's download
415 for a ``preview=1`` or an ``offset`` (a text preview) of a type without that preview
(a property of the stored file). The rules JSON Schema
cannot state are in the document as extension keywords, which ``schema_rules.py`` teaches the
fuzzer. Path parameters naming a run are pinned to a run that exists, so generated batches,
uploads and edits reach the store instead of stopping at a 404. Each run draws a new seed
(the output names it: ``--seed N`` replays a failure).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["MAX_EXAMPLES", "run_schemathesis"]

MAX_EXAMPLES = 10  # per operation and phase: ~1,000 requests in all, well under a minute
RULES = Path(__file__).resolve().parent / "schema_rules.py"

_CONFIG = """hooks = "{rules}"
# every warning but two heuristics. "validation_mismatch" (an operation whose valid cases all
# got a 4xx): the positive_data_acceptance check makes it redundant, failing on each valid case
# refused, with the statuses expected below. "missing_auth" (a scenario of mostly 401s for an
# operation none of whose valid cases has been served yet): a file download whose generated
# paths name no stored file answers 404 to every valid case and 401 to the cases sent without
# the token, so whether it fired hung on the seed (CI, 2026-12-01). That the token works is
# what every other operation's served cases show; the ignored_auth check covers the 401s.
warnings = ["missing_test_data", "base_url_mismatch", "missing_deserializer",
            "unused_openapi_auth", "unsupported_regex", "method_not_allowed",
            "constants_extraction", "unmatched_filter", "unresolvable_reference", "rate_limited",
            "dictionary_mismatch", "timeout_units"]

[parameters]
"path.run" = "{run_id}"

[[operations]]
include-name = "GET /api/v1/runs"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409",
                                                     "429"]

[[operations]]
include-name = "GET /api/v1/histories"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409",
                                                     "429"]

[[operations]]
include-name = "GET /api/v1/runs/{{run}}/files/{{path}}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "415",
                                                     "429"]
"""


def run_schemathesis(base_url: str, token: str, run_id: str, workdir: Path,
                     max_examples: int = MAX_EXAMPLES, timeout: float = 240
                     ) -> subprocess.CompletedProcess[str]:
    """``schemathesis run --checks all`` against ``base_url``; its output and exit status."""
    (workdir / "schemathesis.toml").write_text(_CONFIG.format(rules=RULES, run_id=run_id))
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{base_url}/openapi.json",
               "--header", f"Authorization: Bearer {token}", "--checks", "all",
               "--max-examples", str(max_examples), "--workers", "1",
               "--request-timeout", "30"]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          cwd=workdir)
