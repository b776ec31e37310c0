"""The execution server daemon: sockets, durable jobs, keys, config and audit."""
