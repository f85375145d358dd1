"""Vector-store adapters of the ``core.ports.VectorStore`` port.

- :class:`indexing.stores.edge.EdgeVectorStore`: embedded default on qdrant-edge (one shard directory per collection
  version, aliases as atomically written pointer files).
- :class:`indexing.stores.qdrant.QdrantVectorStore`: qdrant-client against a Qdrant server URL, or local mode
  (``path=`` / ``":memory:"``) standing in for the server in tests.

Both pass the one contract suite in ``tests/contracts/test_vector_store_contract.py``.
"""
