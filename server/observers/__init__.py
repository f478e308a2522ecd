"""What the server tells the outside while it runs, never steering it: the ``--events`` JSON
lines, the end-of-run summary text, the progress line and the Prometheus ``--metrics``.
"""
