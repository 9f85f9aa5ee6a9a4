"""Settings for the test suite: the project's settings, minus what would run behind a test's back."""

import os

from creatorflow.settings import *  # noqa: F403
from creatorflow.settings import CREATORFLOW

# A timer releasing reservations from another thread would race tests that expire them on purpose.
CREATORFLOW = {**CREATORFLOW, "EXPIRE_IN_PROCESS": False}
# Tests assert on the once-per-transaction publish itself; tests of coalescing turn it on.
CREATORFLOW["PUBLISH_COALESCE_SECONDS"] = 0
# Tests that leave an event "received" on purpose replay it themselves: the applier of the test
# process picks up left-behind events only in a test that sets a wait (0: never), or a server a
# test starts with CREATORFLOW_INBOX_ORPHAN_SECONDS in its environment.
CREATORFLOW["INBOX_ORPHAN_SECONDS"] = float(os.environ.get("CREATORFLOW_INBOX_ORPHAN_SECONDS", "0"))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
