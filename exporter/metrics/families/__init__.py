"""One module per metric family group; each lists its collectors in `COLLECTORS`."""
