"""mlcore services: everything that writes to the registry and its jobs."""
