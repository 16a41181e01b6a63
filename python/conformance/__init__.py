"""Conformance servers: real inference-server code (installed from its released wheel) over a stub
engine, so that clients can be tested against the server's own request handling without a GPU."""
