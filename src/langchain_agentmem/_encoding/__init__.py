"""Values as stored: exact JSON text (:mod:`.json`) and any-string keys (:mod:`.keys`).
Pure, imported by every layer above."""
