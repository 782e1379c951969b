"""Signals that let upper apps react to changes in accounts without accounts importing them."""

from django.dispatch import Signal

# Sent after an import changed the insurance type, status or region of insured persons (C1).
# Keyword argument ``person_ids``: list of InsuredPerson primary keys. Family sharing ends the
# bindings of owners who can no longer share (R27).
persons_sharing_changed = Signal()
