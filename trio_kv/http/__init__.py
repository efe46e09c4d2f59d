"""The HTTP JSON API's pure parts: what a request means and what its answer
says, with no IO.

* ``routes``: targets, the Host guard, CORS, each route as a plan (store
  calls plus how to answer from their replies).
* ``json_values``: how stored bytes and keys map to JSON and back.
* ``openapi``: the OpenAPI document ``GET /openapi.json`` serves.
* ``prometheus``: ``GET /metrics``' text from a snapshot the server takes.

Rules this package keeps (tests/unit/test_layering.py checks them): no
trio, sockets or threads, and nothing from ``trio_kv.store`` or
``trio_kv.server``; it may use ``protocol`` and ``commands``. The server
layer (``server/http_listener.py``, ``server/http_connection.py``,
``server/http_metrics.py``) does the IO, takes the metrics snapshot and runs
the store calls.
"""
