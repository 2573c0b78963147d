"""Balance sources: one module per API; ``registry.SOURCES`` lists them."""
