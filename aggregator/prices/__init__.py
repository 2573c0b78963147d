"""Price sources: one module per API (config, requests, pure parser), listed in registry.py."""
