"""v2 wire formats: UTC and US-Eastern dates, query-date parsing, paging tokens."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ctctsync.sandbox.v2.paging import BadTokenError, decode_token, encode_token
from ctctsync.sandbox.v2.render import eastern_date, parse_date, utc_date


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(("ms", "text"), [
    pytest.param(_ms(2015, 2, 11, 13, 12, 6) + 7, "2015-02-11T13:12:06.007Z", id="utc-ms"),
    pytest.param(0, "1970-01-01T00:00:00.000Z", id="epoch"),
])
def test_utc_date(ms: int, text: str) -> None:
    assert utc_date(ms) == text


@pytest.mark.parametrize(("ms", "text"), [
    pytest.param(_ms(2015, 2, 11, 15, 43, 48), "2015-02-11T10:43:48.000-05:00", id="winter"),
    pytest.param(_ms(2013, 6, 19, 15, 36, 43), "2013-06-19T11:36:43.000-04:00", id="summer"),
    # the 2021 spring-forward: 06:59:59Z is still EST, 07:00:00Z already EDT
    pytest.param(_ms(2021, 3, 14, 6, 59, 59), "2021-03-14T01:59:59.000-05:00", id="before-dst"),
    pytest.param(_ms(2021, 3, 14, 7, 0, 0), "2021-03-14T03:00:00.000-04:00", id="after-dst"),
])
def test_eastern_date_follows_dst(ms: int, text: str) -> None:
    assert eastern_date(ms) == text


@pytest.mark.parametrize(("text", "ms"), [
    ("2015-02-11T13:12:06.000Z", _ms(2015, 2, 11, 13, 12, 6)),
    ("2015-02-11T13:12:06Z", _ms(2015, 2, 11, 13, 12, 6)),
    ("2015-02-11T08:12:06.000-05:00", _ms(2015, 2, 11, 13, 12, 6)),
    ("2015-02-11T14:12:06+01:00", _ms(2015, 2, 11, 13, 12, 6)),
    ("2015-02-11T14:12:06 01:00", _ms(2015, 2, 11, 13, 12, 6)),  # '+' decoded as a space
    ("2015-02-11", _ms(2015, 2, 11)),
])
def test_parse_date(text: str, ms: int) -> None:
    assert parse_date(text) == ms


def test_token_round_trip_and_format() -> None:
    token = encode_token({"startAt": 29, "limit": 10, "status": "ACTIVE"})
    # the exact token of the 2015 Java capture (GET_v2_contacts__page1__java-sdk.json)
    assert token == "c3RhcnRBdD0yOSZsaW1pdD0xMCZzdGF0dXM9QUNUSVZF"
    assert decode_token(token) == {"startAt": "29", "limit": "10", "status": "ACTIVE"}


@pytest.mark.parametrize("token", ["", "%%%", "YQ", "=="])
def test_bad_tokens(token: str) -> None:
    with pytest.raises(BadTokenError):
        decode_token(token)
