"""The read layer's bookmark rules (``sync.stream.plan_since``) and the dlt source's
arguments, without a server: what a first, a later and a full read start from; a bad
argument is named (never its value); building the source makes no request."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ctctsync.dlt import constant_contact
from ctctsync.errors import ConfigError, ReauthorizeRequired
from ctctsync.sync.stream import TableStreams, is_incremental, plan_since
from ctctsync.tables import TABLES, tables_for

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_a_first_read_starts_at_the_history_start_and_a_later_one_at_the_bookmark() -> None:
    contacts = TABLES["contacts"].for_version("v3")
    first = plan_since(contacts, None, history_start=date(2020, 1, 1), now=NOW)
    assert (first.mode, first.since) == ("full", datetime(2020, 1, 1, tzinfo=UTC))
    mark = NOW - timedelta(hours=1)
    later = plan_since(contacts, mark, lookback=timedelta(minutes=5), now=NOW)
    assert (later.mode, later.disposition) == ("incremental", "merge")
    assert later.since == mark - timedelta(minutes=5)
    # a bookmark ahead of this clock (another host's) never hides rows: capped at now
    ahead = plan_since(contacts, NOW + timedelta(days=1), lookback=timedelta(0), now=NOW)
    assert ahead.since == NOW
    # never before the history start, whatever the look-back
    early = plan_since(contacts, datetime(2020, 1, 1, 0, 1, tzinfo=UTC),
                       history_start=date(2020, 1, 1), lookback=timedelta(hours=1), now=NOW)
    assert early.since == datetime(2020, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("name", ["account_info", "contact_lists", "events"])
def test_full_and_read_whole_tables_are_read_whole_and_replaced(name: str) -> None:
    table = TABLES[name].for_version("v3")
    plan = plan_since(table, NOW - timedelta(hours=1), now=NOW)
    assert not is_incremental(table)
    assert (plan.mode, plan.disposition, plan.since) == ("full", "replace", None)


def test_a_naive_bookmark_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_since(TABLES["contacts"], datetime(2026, 1, 1), now=NOW)


@pytest.mark.parametrize(("kw", "named"), [
    ({"base_url": "not a url"}, "base_url"),
    ({"api_version": "v4"}, "api_version"),
    ({"qps_limit": 0}, "qps_limit"),
    ({"lookback_minutes": -1}, "lookback_minutes"),
    ({"tracking": {"tiers": [[5, 0]]}}, "tiers"),
])
def test_bad_arguments_are_named_never_their_values(kw: dict[str, Any], named: str) -> None:
    args = {"api_key": "key", "access_token": "secret-value-123", **kw}
    with pytest.raises(Exception) as bad:
        constant_contact(**args)
    chain: list[BaseException] = []
    cause: BaseException | None = bad.value
    while cause is not None:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    config = next(e for e in chain if isinstance(e, ConfigError))
    assert named in str(config)
    assert not any("secret-value-123" in str(e) for e in chain)


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_the_source_has_one_resource_per_table_and_makes_no_request(version: str) -> None:
    # nothing listens on port 9: building and inspecting the source must not call it
    source = constant_contact(api_key="key", access_token="token", api_version=version,
                              base_url="http://127.0.0.1:9")
    assert list(source.resources) == list(tables_for(version))
    for name, resource in source.resources.items():
        table = tables_for(version)[name]
        hints = resource.compute_table_schema()
        assert hints["write_disposition"] == ("merge" if is_incremental(table) else "replace")
        keys = [c for c, col in hints["columns"].items() if col.get("primary_key")]
        assert keys == list(table.primary_key)
        assert {c: col["data_type"] for c, col in hints["columns"].items()
                if c in table.column_names} == {c.name: c.type for c in table.columns}


def test_streams_name_the_tables_a_version_cannot_fill() -> None:
    from ctctsync.config import SourceConfig

    streams = TableStreams(SourceConfig(api_version="v3", api_key="k", access_token="t"))
    with pytest.raises(KeyError, match="my_library_files"):
        streams.table("my_library_files")
    assert streams.table("contacts").column("id").type == "text"  # v3 ids are UUIDs


def test_an_empty_token_store_says_how_this_source_signs_in(tmp_path: Path) -> None:
    # the CLI's advice (CTCTSYNC_REFRESH_TOKEN) means nothing to a dlt source's user
    source = constant_contact(api_key="client-id-123", api_version="v3",
                              token_store=f"sqlite:///{tmp_path / 'state.db'}",
                              base_url="http://127.0.0.1:9")
    with pytest.raises(Exception) as refused:
        list(source.resources["contacts"])
    cause: BaseException | None = refused.value
    while cause is not None and not isinstance(cause, ReauthorizeRequired):
        cause = cause.__cause__ or cause.__context__
    assert cause is not None, "a ReauthorizeRequired names the problem"
    message = str(cause)
    assert "SOURCES__CONSTANT_CONTACT__REFRESH_TOKEN" in message
    assert "ctctsync auth login" in message and "CTCTSYNC_REFRESH_TOKEN" not in message
