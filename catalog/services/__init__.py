"""Catalog services: everything that writes. See the modules for import, export and category changes."""
