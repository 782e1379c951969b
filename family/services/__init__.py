"""Writes for family sharing: policy loading (C2) and bindings (R20–R27)."""

from family.services.bindings import *  # noqa: F403
from family.services.policy import POLICY_VALUE_FIELDS, PolicyLoadResult, policy_load

__all__ = ["POLICY_VALUE_FIELDS", "PolicyLoadResult", "policy_load"]
