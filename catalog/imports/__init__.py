"""The product import pipeline: reading files (reading), turning records into rows (rows), resolving their
categories (categories), and writing them in resumable chunks (products)."""
