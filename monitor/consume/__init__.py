"""The streaming consumer, ``monitor consume``: broker sources, decoding, ack after commit."""
