"""The registry of fake exchanges: one line per module, one fake per balance source.

A new fake is a module beside these that ends with ``FAKE = Fake(...)`` (see ``fake.py``)
and one line below; ``tests/sources/test_registry.py`` checks that every balance source
has exactly one.
"""

from __future__ import annotations

from aggregator.sandbox import bitopro, bitz, bitzoom, pitrade
from aggregator.sandbox.fake import Fake

FAKES: dict[str, Fake] = {
    fake.source: fake
    for fake in (
        bitopro.FAKE,
        bitz.FAKE,
        bitzoom.FAKE,
        pitrade.FAKE,
    )
}
