"""Assembly and the programs people run: wiring, clusters, identities, RBAC, rehearsal, the CLI and the server."""
