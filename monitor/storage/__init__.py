"""PostgreSQL storage: the schema, the engine, and the queries that read and write it."""
