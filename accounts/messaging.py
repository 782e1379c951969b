"""Outbound SMS behind one small interface: the console in development, memory in tests.

A real gateway is an edge we cannot run here; it plugs in as another sender with the same
``send(phone, text)`` method and a name in SMS_SENDERS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from accounts.masking import mask_phone

logger = logging.getLogger(__name__)


@dataclass
class SentSms:
    phone: str
    text: str


class ConsoleSmsSender:
    """Development: the message goes to the log (the phone masked, the text whole, so a developer can act on it)."""

    def send(self, phone: str, text: str) -> None:
        logger.warning("SMS to %s: %s", mask_phone(phone), text)


class MemorySmsSender:
    """Tests: messages are kept in ``outbox`` for assertions, like Django's locmem e-mail backend."""

    outbox: list[SentSms] = []

    def send(self, phone: str, text: str) -> None:
        self.outbox.append(SentSms(phone=phone, text=text))


SMS_SENDERS = {"console": ConsoleSmsSender, "memory": MemorySmsSender}


def send_sms(*, phone: str, text: str) -> None:
    """Send one text message through the configured sender."""
    SMS_SENDERS[settings.SMS_SENDER]().send(phone, text)
