"""What the model reads for a product."""

from __future__ import annotations

from mlcore.engine.types import ProductText

# The encoder truncates to max_length tokens anyway; cutting the description first keeps the title and brand, which
# carry most of the signal, inside the window.
DESCRIPTION_CHARS = 300


def product_text(product: ProductText, *, description_chars: int = DESCRIPTION_CHARS) -> str:
    parts = [product.title.strip()]
    if product.brand.strip() and product.brand.strip().lower() not in product.title.lower():
        parts.append(f"brand: {product.brand.strip()}")
    description = " ".join(product.description.split())[:description_chars]
    if description:
        parts.append(description)
    return " | ".join(parts)
