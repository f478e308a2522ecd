"""A player module that cannot be imported where TICKWIRE_TEST_FAIL_IMPORT is set (as a
module with a missing dependency in the pool's processes would fail)."""

import os

if os.environ.get("TICKWIRE_TEST_FAIL_IMPORT"):
    raise ImportError("fragile_players refuses to load here (TICKWIRE_TEST_FAIL_IMPORT is set)")


class Fragile:
    def get_action(self, state):
        return "fine"
