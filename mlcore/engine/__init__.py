"""Plain-Python ML engine (issue 3): never imports Django."""
