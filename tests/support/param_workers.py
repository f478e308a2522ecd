"""Worker targets for the parameter-broadcast tests (importable in spawned processes)."""


def echo_params(worker):
    """Report every parameter version seen, with checks computed on its arrays."""
    last = 0
    while not worker.stopping:
        if not worker.wait_params(1.0, newer_than=last):
            continue
        v, p = worker.params_version, worker.params
        assert v > last, f"version went from {last} to {v}"
        worker.send({"seen": v, "sum": int(p["a"].sum()), "n": int(p["a"].size), "b": p["b"].tolist()})
        last = v


def count_to(worker, n, pause):
    """Send items 0..n-1, one every ``pause`` seconds (or sooner if the chief stops)."""
    for i in range(n):
        worker.send(i)
        if worker.wait_stopping(pause):
            return
