"""Receivers for what model servers already emit: KServe/Seldon payload loggers, OTLP.

Each source decodes its wire format into prediction-log records and hands them to the one
ingest path (``monitor.ingest.service``): the same checks, idempotent ids and COPY as
``POST /v1/predictions``.
"""
