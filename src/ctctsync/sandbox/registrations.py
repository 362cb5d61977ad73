"""Event registrations, version-neutral and derived from the seed alone.

An event with ``registered`` = N (what v2 calls ``total_registered_count``) has exactly N
registrations in status REGISTERED, plus about one in eight more that were CANCELED or are
still PENDING, so the v3 ``registration_count`` and the v2 count agree. Registrants are
contacts of the seeded account (ids ``1..spec.contacts``), so they stay the same when contacts
are added later; an account without contacts gets registrants who are not contacts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ctctsync.sandbox import generator as gen

KIND_REGISTRATION_RNG = 50
"""Random stream of registrations (above the generator's kinds 0-6 and their uuid kinds)."""
TICKET_PRICES = (0.0, 0.0, 10.0, 25.0)
"""Ticket price by event: half the events are free."""


@dataclass(frozen=True, slots=True)
class Registration:
    """One registration of an event's (single, default) track."""

    number: int
    """1-based within its event (the stable key of the record)."""
    contact_id: int | None
    """The registrant's contact, or None when the account has no contacts."""
    first_name: str
    last_name: str
    email: str
    status: str
    """REGISTERED, CANCELED or PENDING."""
    payment_status: str | None
    """PAID, PENDING or REFUNDED for a paid event; None for a free one."""
    registered_ms: int
    tickets: int
    price: float
    """Per ticket."""
    checked_in: int
    """Tickets checked in (only at COMPLETE events)."""
    new_contact: bool

    @property
    def total(self) -> float:
        """What the order costs."""
        return self.tickets * self.price


def ticket_price(seed: int, index: int) -> float:
    """The ticket price of event ``index`` (0.0: free)."""
    return TICKET_PRICES[gen.rng_for(seed, KIND_REGISTRATION_RNG, index).randrange(4)]


def _payment(status: str, price: float, draw: float) -> str | None:
    if not price:
        return None
    if status == "CANCELED":
        return "REFUNDED"
    if status == "PENDING":
        return "PENDING"
    return "PAID" if draw < 0.9 else "PENDING"


@functools.lru_cache(maxsize=256)
def _build(seed: int, index: int, n_contacts: int, registered: int, status: str,
           created_ms: int, start_ms: int) -> tuple[Registration, ...]:
    rng = gen.rng_for(seed, KIND_REGISTRATION_RNG, index, 1)
    price = ticket_price(seed, index)
    statuses = ["REGISTERED"] * registered + [
        rng.choice(("CANCELED", "PENDING")) for _ in range(registered // 8)]
    rng.shuffle(statuses)
    out: list[Registration] = []
    for number, reg_status in enumerate(statuses, start=1):
        cid: int | None = rng.randrange(1, n_contacts + 1) if n_contacts else None
        if cid is not None:
            first, last, email = gen.contact_names(seed, cid)
        else:
            first = gen.FIRST_NAMES[rng.randrange(len(gen.FIRST_NAMES))]
            last = gen.LAST_NAMES[rng.randrange(len(gen.LAST_NAMES))]
            email = f"{gen.ascii_fold(first)}.{gen.ascii_fold(last)}.r{number}@example.org"
        tickets = 1 + rng.randrange(4)
        attended = status == "COMPLETE" and reg_status == "REGISTERED" and rng.random() < 0.7
        out.append(Registration(
            number=number, contact_id=cid, first_name=first, last_name=last, email=email,
            status=reg_status, payment_status=_payment(reg_status, price, rng.random()),
            registered_ms=created_ms + int((start_ms - created_ms) * rng.random()),
            tickets=tickets, price=price, checked_in=tickets if attended else 0,
            new_contact=rng.random() < 0.2,
        ))
    return tuple(out)


def registrations(seed: int, index: int, event: gen.Event, n_contacts: int
                  ) -> tuple[Registration, ...]:
    """Every registration of event number ``index`` (0-based) of the account of ``seed``;
    ``n_contacts`` is the seeded contact count (``AccountSpec.contacts``)."""
    return _build(seed, index, n_contacts, event.registered, event.status, event.created_ms,
                  event.start_ms)
