"""The session core: the state and per-message work of one agent session, below the
public API (``agent``, ``session``, ``track``, ``windows``, the facades over it) and
above the transports (``fishjam_fast/transport/``) and the codec.

Its modules, from the top of the layers down:

- ``lifecycle``: the session's states (connected, reconnecting, closed) and what a drop
  means; the base class of ``AgentSession``.
- ``pcm_stream``: ``send_pcm``'s stream state (resampling, whole chunks across calls).
- ``connection``: the ``Connection`` (one per session: transport, counters, read lock,
  backlog, outage and closed state) and each track's ``TrackSender``; compiled from
  this .py with ``connection.pxd`` (Cython's pure-Python mode).
- ``reconnect``: ``ReconnectPolicy`` and one outage's attempts (backoff, jitter,
  budget).
- ``playout``: the playout clock (``queued_duration``, ``wait_for_playout``); compiled
  from this .py with ``playout.pxd``.
- ``locks``: the session's read lock (one ``receive()`` at a time); compiled from this
  .py with ``locks.pxd``.

Nothing is re-exported here: import each module by its name (``[tool.importlinter]``
in pyproject.toml keeps the order of the layers).
"""
