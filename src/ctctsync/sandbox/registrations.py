"""Event registrations, version-neutral; an unchanged event's are derived from the seed alone.

An event with ``registered`` = N (what v2 calls ``total_registered_count``) has exactly N
registrations in status REGISTERED, plus about one in eight more that were CANCELED or are
still PENDING, so the v3 ``registration_count`` and the v2 count agree. Registrants are
contacts of the seeded account (ids ``1..spec.contacts``), so they stay the same when contacts
are added later; an account without contacts gets registrants who are not contacts.

The account's event test hooks (``Account.add_event_registrations`` ...) take a copy of an
event's seeded registrations and change that (:func:`new_registration`, :func:`changed`),
keeping ``registered`` equal to the REGISTERED count.
"""

from __future__ import annotations

import dataclasses
import functools
import random
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


REGISTRATION_STATUSES = ("PENDING", "REGISTERED", "CANCELED", "EXPIRED", "IN_PROGRESS", "FAILED")
"""v3's registration statuses (constant-contact-v3-api.md §3.11)."""
PAYMENT_STATUSES = ("PENDING", "PAID", "REFUNDED", "CANCELLED", "FAILED", "CHARGED_BACK")
"""v3's payment statuses (§3.11; note CANCELLED here, CANCELED for a registration)."""


def new_registration(seed: int, index: int, number: int, contact_id: int | None,
                     registered_ms: int, rng: random.Random) -> Registration:
    """A registration made now: REGISTERED, 1-4 tickets, PAID for a paid event, not checked
    in; the registrant is contact ``contact_id`` (an existing contact, so not ``new_contact``)
    or, without one, someone who is not a contact."""
    if contact_id is not None:
        first, last, email = gen.contact_names(seed, contact_id)
    else:
        first = gen.FIRST_NAMES[rng.randrange(len(gen.FIRST_NAMES))]
        last = gen.LAST_NAMES[rng.randrange(len(gen.LAST_NAMES))]
        email = f"{gen.ascii_fold(first)}.{gen.ascii_fold(last)}.r{number}@example.org"
    price = ticket_price(seed, index)
    return Registration(
        number=number, contact_id=contact_id, first_name=first, last_name=last, email=email,
        status="REGISTERED", payment_status="PAID" if price else None,
        registered_ms=registered_ms, tickets=1 + rng.randrange(4), price=price, checked_in=0,
        new_contact=contact_id is None)


def changed(r: Registration, *, status: str | None = None, payment_status: str | None = None,
            checked_in: bool | int | None = None) -> Registration:
    """``r`` with a new registration status, payment status and/or check-in (True: every
    ticket, False: none, a number: that many tickets). ValueError for an unknown status, a
    payment status on a free event's registration or a check-in count out of range.

    Canceling a paid registration without a payment status refunds it, as the seeded
    cancellations are (UNCONFIRMED: CC may leave the payment for the owner to refund).
    """
    if status is not None and status not in REGISTRATION_STATUSES:
        raise ValueError(f"registration_status must be one of {', '.join(REGISTRATION_STATUSES)}")
    if payment_status is not None:
        if payment_status not in PAYMENT_STATUSES:
            raise ValueError(f"payment_status must be one of {', '.join(PAYMENT_STATUSES)}")
        if r.payment_status is None:
            raise ValueError("a free event's registration has no payment status")
    new_payment = payment_status or r.payment_status
    if status == "CANCELED" and payment_status is None and r.payment_status in ("PAID", "PENDING"):
        new_payment = "REFUNDED"
    tickets_in = r.checked_in
    if isinstance(checked_in, bool):
        tickets_in = r.tickets if checked_in else 0
    elif checked_in is not None:
        if not 0 <= checked_in <= r.tickets:
            raise ValueError(f"checked_in must be between 0 and the {r.tickets} tickets")
        tickets_in = checked_in
    return dataclasses.replace(r, status=status or r.status, payment_status=new_payment,
                               checked_in=tickets_in)
