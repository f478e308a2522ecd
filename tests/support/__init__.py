"""What the tests share, imported as ``support.<module>`` (pytest puts tests/ on sys.path;
the ``procs`` fixture puts it on child processes' PYTHONPATH, so the same names work as
``--agent``/``--world`` specs: ``support.sample_agents:CountingAgent``).

Helpers for the tests themselves: ``paths`` (where things are), ``processes`` (child
processes), ``events`` and ``summaries`` (reading what a server writes), ``servers``
(starting and watching a server), ``keyring`` (CURVE keys and flags), ``raw_zmtp`` (a
hostile peer's hand-made ZMTP), ``doc_blocks`` (the README's and docs' code blocks), ``replay_html`` (the
replay page's data), ``png`` (a PNG's pixels), ``server_rules_builders`` and
``agent_rules_builders`` (rules, joins, welcomes and actions for the socket-free rules
specifications), ``rules_pair`` (ServerRules and AgentRules played against each other over
encoded bytes, no sockets).

Code the tests run: worlds (``counter_world``, ``big_world``, ``big_observation_world``,
``marl_worlds``), agents (``sample_agents``, ``stop_agents``, ``lock_agents``), PlayerPool
players and Chief workers (``sample_players``, ``fragile_players``, ``param_workers``), a
raw-socket player (``raw_player``) and scripts run as processes (``gap_observer``,
``hostile_chief``, ``pool_script``).

Nothing here is a test, and no test module imports another: shared helpers live here.
"""
