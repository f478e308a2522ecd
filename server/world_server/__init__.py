"""The world server's I/O: the lockstep loop (:mod:`.loop`) that drives the pure rules of
:mod:`tickwire.protocol` with real sockets and a clock, its configuration, the three ZeroMQ
sockets (:mod:`.transport`), CURVE keys and the ZAP allow-list (:mod:`.security`), the memory
guard against floods, and the launcher of ``tickwire run`` (a server plus local agent processes).
"""
