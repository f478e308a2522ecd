"""The shared I/O layer under the agents and the server: process hygiene (die with the parent,
pin to a core, reap children), the spawn entry of agent processes, CURVE key files, and the
set-up of every ZeroMQ socket (:mod:`tickwire.plumbing.sockets`: options, CURVE, bind).

It sits between the pure :mod:`tickwire.protocol` and the two sides that do I/O: it may import
the protocol, pyzmq and the standard library, never :mod:`tickwire.agents`, :mod:`tickwire.server`
or the entry points (tests/test_layers.py checks). This ``__init__`` imports nothing, so a
spawned agent reaches :func:`tickwire.plumbing.child.agent_entry` without slow imports.
"""
