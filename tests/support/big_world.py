"""A grid world whose checkpoints are large, so a test can kill the server while it writes one."""

from tickwire.server.worlds.grid_world import GridWorld
from tickwire.server.worlds.snapshot import restore_state, snapshot_state

#: Bytes of padding in every snapshot: writing one checkpoint takes tens of milliseconds.
PADDING = 32 * 2**20


class BigCheckpointWorld(GridWorld):
    """The grid world (same states, same hashes) with ``PADDING`` zero bytes in each snapshot."""

    def snapshot(self, state):
        return snapshot_state({"state": state, "padding": bytes(PADDING)})

    def restore(self, blob):
        return restore_state(blob)["state"]
