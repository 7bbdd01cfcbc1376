"""Pins the clock of every Python process a test starts (workers, servers), so it agrees with the
test's own pinned clock: the test puts this directory on PYTHONPATH and the offset from the real
clock in OBD_TEST_CLOCK_OFFSET (see tests/clock/__init__.py). Python imports `sitecustomize` at
start-up by itself; outside the tests the variable is unset and nothing happens."""

import os
import time

_offset = os.environ.get("OBD_TEST_CLOCK_OFFSET")
if _offset:
    import time_machine

    time_machine.travel(time.time() + float(_offset), tick=True).start()
