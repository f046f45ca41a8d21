"""Ingest: decode request bodies and files, check records against the model's feature schema,
and hand typed rows to ``storage.ingest`` for COPY."""
