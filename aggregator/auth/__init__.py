"""Request signing for the balance sources: one ``httpx.Auth`` per authentication scheme."""
