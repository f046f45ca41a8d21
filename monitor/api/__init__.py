"""HTTP API: app factory, routes, error handlers."""
