"""What the ServerApp and the ClientApp agree on: the wire protocol and the experiment config.

A package of its own, beside ``server/`` and ``clients/`` rather than inside
either, because both sides import it and neither may import the other: a
ClientApp must not load the server's strategy, results or trackers to learn a
message key, and the server must not load client code. It holds no logic
beyond parsing and naming:

- ``protocol.messages``: message types and the record and metric keys of
  every instruction and reply (Algorithm 1's w_t, E, B, eta_t down; w^k_{t+1},
  n_k and the loss up).
- ``protocol.config``: the run config (``[tool.flwr.app.config]``), parsed
  once into a frozen ``ExperimentConfig``; its schema is the one source of the
  keys, defaults and allowed values.
"""
