"""The dlt source (``ctctsync.dlt.constant_contact``) as its users run it: their own
``dlt.pipeline`` into DuckDB and PostgreSQL equals the sandbox's truth; a second run loads
only what changed; ``.with_resources`` picks tables; credentials come from dlt's
conventions and never reach a log, an error or the pipeline's files."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dlt
import psycopg
import pytest
from sqlalchemy import make_url
from sync_truth import assert_records_match_truth
from v3_truth import V3Truth, assert_v3_records_match

from ctctsync.config import DEFAULT_STATE_DIR
from ctctsync.dlt import BOOKMARK_KEY, LEDGER_KEY, constant_contact
from ctctsync.errors import ReauthorizeRequired
from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.testing import v3_tokens_by_pkce
from ctctsync.sync.stream import is_incremental
from ctctsync.tables import tables_for

Rows = list[dict[str, Any]]
PipelineFactory = Callable[..., dlt.Pipeline]


def table_rows(pipeline: dlt.Pipeline, table: str) -> Rows:
    """Every row of a table the pipeline loaded, as the destination's driver returns it."""
    with pipeline.sql_client() as client:
        name = client.make_qualified_table_name(table)
        with client.execute_query(f"SELECT * FROM {name}") as cur:
            columns = [d[0] for d in cur.description]
            return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def dataset_tables(pipeline: dlt.Pipeline) -> set[str]:
    """The data tables of the pipeline's dataset (dlt's own ``_dlt_*`` tables left out)."""
    schema = pipeline.default_schema
    return {name for name in schema.data_table_names() if not name.startswith("_dlt")}


def loaded_counts(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Rows the pipeline's last run loaded per table (dlt's normalize counts)."""
    info = pipeline.last_trace.last_normalize_info
    assert info is not None
    return {t: n for t, n in info.row_counts.items() if not t.startswith("_dlt")}


def bookmark(pipeline: dlt.Pipeline, table: str) -> str | None:
    """A table's bookmark as the source keeps it in the pipeline's state."""
    resources = pipeline.state["sources"]["constant_contact"]["resources"]  # type: ignore[typeddict-item]
    value: str | None = resources.get(table, {}).get(BOOKMARK_KEY)
    return value


@pytest.fixture(params=[pytest.param("duckdb", id="duckdb"),
                        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)])
def make_pipeline(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PipelineFactory]:
    """``make_pipeline()``: a user's own dlt pipeline (its own folder) into a DuckDB file or a
    unique PostgreSQL dataset (dropped after the test)."""
    datasets: list[str] = []
    dsn: str | None = (request.getfixturevalue("pg_dsn") if request.param == "postgres"
                       else None)

    def factory(name: str = "cc") -> dlt.Pipeline:
        dataset = f"dlt_{uuid.uuid4().hex[:10]}"
        datasets.append(dataset)
        destination: Any = (dlt.destinations.postgres(credentials=_with_password(dsn)) if dsn else
                            dlt.destinations.duckdb(str(tmp_path / "wh.duckdb")))
        return dlt.pipeline(name, destination=destination, dataset_name=dataset,
                            pipelines_dir=str(tmp_path / "pipelines"))

    yield factory
    if dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for dataset in datasets:
                for schema in (dataset, f"{dataset}_staging"):
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _with_password(dsn: str) -> str:
    # dlt takes a connection string without a password for an incomplete one; the test
    # server trusts local connections, so the password is empty (as a user would write it)
    url = make_url(dsn)
    return url.set(password=url.password or "").render_as_string(hide_password=False)


def source_for(sb: Sandbox, version: str = "v2", **kw: Any) -> Any:
    """The source for the sandbox account, credentials passed as arguments."""
    creds = sb.credentials
    token = creds.v3_access_token if version == "v3" else creds.access_token
    kw.setdefault("access_token", token)
    return constant_contact(api_key=creds.api_key, api_version=version, base_url=sb.base_url,
                            qps_limit=None, daily_limit=None, **kw)


def test_v2_pipeline_equals_truth(sandbox: Sandbox, make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    info = pipeline.run(source_for(sandbox))
    assert not info.has_failed_jobs

    v2 = tables_for("v2")
    assert dataset_tables(pipeline) == set(v2)
    counts = loaded_counts(pipeline)
    for name in v2:
        ignore = ("end_date",) if name == "email_campaign_summary" else ()
        n = assert_records_match_truth(sandbox, name, table_rows(pipeline, name), ignore=ignore)
        assert n > 0 and counts[name] == n, name
        # the registry's types, not dlt's inference: keys are not null, ids are bigint in v2
        columns = pipeline.default_schema.get_table_columns(name)
        for key in v2[name].primary_key:
            assert columns[key]["nullable"] is False and columns[key]["primary_key"], name
    assert pipeline.default_schema.get_table_columns("contacts")["id"]["data_type"] == "bigint"
    assert pipeline.default_schema.get_table("contacts")["write_disposition"] == "merge"
    assert pipeline.default_schema.get_table("account_info")["write_disposition"] == "replace"
    for name, table in v2.items():  # a bookmark for each key-based table, in dlt's state
        assert (bookmark(pipeline, name) is not None) == is_incremental(table), name


def test_v3_pipeline_equals_truth(sandbox: Sandbox, make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    pipeline.run(source_for(sandbox, "v3"))

    v3 = tables_for("v3")
    assert dataset_tables(pipeline) == set(v3)
    assert "my_library_files" not in v3  # no MyLibrary endpoint in v3
    truth = V3Truth(sandbox)
    counts = loaded_counts(pipeline)
    for name in v3:
        n = assert_v3_records_match(truth, name, table_rows(pipeline, name))
        assert n > 0 and counts[name] == n, name
    assert pipeline.default_schema.get_table_columns("contacts")["id"]["data_type"] == "text"


EVERY_RUN = {"tiers": [[0, 0]]}
"""Every sent campaign checked on every run: the sandbox's seeded campaigns are years old,
which ctctsync's default tiers check weekly (test_unchanged_campaigns_cost_no_tracking_call)."""


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_second_run_loads_only_the_changes(sandbox: Sandbox, tmp_path: Path,
                                           version: str) -> None:
    pipeline = dlt.pipeline("cc", destination=dlt.destinations.duckdb(str(tmp_path / "w.db")),
                            dataset_name="cc", pipelines_dir=str(tmp_path / "pipelines"))
    pipeline.run(source_for(sandbox, version, tracking=EVERY_RUN))
    first = loaded_counts(pipeline)
    contacts_mark = bookmark(pipeline, "contacts")

    acct = sandbox.account
    acct.advance(60)
    changed = set(acct.update_contacts(7)) | set(acct.add_contacts(3))
    sent = [c.id for c in acct.campaigns.values() if c.status == "SENT"]
    acct.send_campaign(sent[0], activities=5)
    sandbox.counters.reset()

    # a new source object, as a scheduled run would make: the bookmarks are dlt's state
    pipeline.run(source_for(sandbox, version, clock=acct.clock.now, tracking=EVERY_RUN))
    second = loaded_counts(pipeline)
    assert second["contacts"] == len(changed)
    assert 0 < second["contact_tracking"] < first["contact_tracking"]
    for name, table in tables_for(version).items():
        if not is_incremental(table):
            assert second[name] == first[name], name  # read whole and replaced
    mark = bookmark(pipeline, "contacts")
    assert contacts_mark is not None and mark is not None and mark > contacts_mark
    if version == "v2":
        # the changed contacts were asked for at the source: one page of them
        assert sandbox.counters.count("GET /v2/contacts") == 1
        for name in tables_for("v2"):
            ignore = ("end_date",) if name == "email_campaign_summary" else ()
            assert_records_match_truth(sandbox, name, table_rows(pipeline, name), ignore=ignore)
    else:
        truth = V3Truth(sandbox)
        for name in tables_for("v3"):
            assert_v3_records_match(truth, name, table_rows(pipeline, name))

    # nothing changed since: with no look-back, the key-based tables load nothing at all
    # (bookmarks taken on the sandbox's clock, which the changes above moved ahead)
    pipeline.run(source_for(sandbox, version, lookback_minutes=0, clock=acct.clock.now,
                            tracking=EVERY_RUN))
    third = loaded_counts(pipeline)
    for name, table in tables_for(version).items():
        if is_incremental(table):
            assert third.get(name, 0) == 0, name


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_unchanged_campaigns_cost_no_tracking_call(sandbox: Sandbox, tmp_path: Path,
                                                   version: str) -> None:
    # ctctsync's campaign planner, its ledger kept in dlt's state: campaigns whose counts
    # did not move (or, old ones, not due under the default tiers) are not read again
    pipeline = dlt.pipeline("cc", destination=dlt.destinations.duckdb(str(tmp_path / "w.db")),
                            dataset_name="cc", pipelines_dir=str(tmp_path / "pipelines"))
    tables = ("email_campaigns", "contact_tracking", "email_campaign_summary")
    pipeline.run(source_for(sandbox, version).with_resources(*tables))
    ledger = pipeline.state["sources"]["constant_contact"]["resources"][  # type: ignore[typeddict-item]
        "contact_tracking"][LEDGER_KEY]
    sent = [c for c in sandbox.account.campaigns.values() if c.status == "SENT"]
    assert len(ledger) == len(sent) > 0

    for tracking in (None, EVERY_RUN):  # old campaigns not due; every campaign scanned
        sandbox.counters.reset()
        pipeline.run(source_for(sandbox, version, tracking=tracking).with_resources(*tables))
        called = {k: v["total"] for k, v in sandbox.counters.snapshot()["endpoints"].items()
                  if v["total"]}
        reports = {k: n for k, n in called.items() if "/tracking/" in k
                   and "summary" not in k}
        assert not reports, (tracking, called)
        assert loaded_counts(pipeline).get("contact_tracking", 0) == 0
    truth_tables = ("contact_tracking", "email_campaign_summary")
    if version == "v2":
        for name in truth_tables:
            assert_records_match_truth(sandbox, name, table_rows(pipeline, name),
                                       ignore=("end_date",))
    else:
        truth = V3Truth(sandbox)
        for name in truth_tables:
            assert_v3_records_match(truth, name, table_rows(pipeline, name))


def test_with_resources_reads_and_loads_only_the_chosen_tables(sandbox: Sandbox,
                                                               tmp_path: Path) -> None:
    pipeline = dlt.pipeline("cc", destination=dlt.destinations.duckdb(str(tmp_path / "w.db")),
                            dataset_name="cc", pipelines_dir=str(tmp_path / "pipelines"))
    source = source_for(sandbox).with_resources("contacts", "contact_lists")
    pipeline.run(source)
    assert dataset_tables(pipeline) == {"contacts", "contact_lists"}
    called = {k for k, v in sandbox.counters.snapshot()["endpoints"].items() if v["total"]}
    assert called == {"GET /v2/contacts", "GET /v2/lists"}
    assert_records_match_truth(sandbox, "contacts", table_rows(pipeline, "contacts"))

    # the bookmarks are dlt's: a normal run reads no contact again, dlt's refresh all of them
    pipeline.run(source_for(sandbox, lookback_minutes=0).with_resources("contacts"))
    assert loaded_counts(pipeline).get("contacts", 0) == 0
    pipeline.run(source_for(sandbox).with_resources("contacts"), refresh="drop_sources")
    assert loaded_counts(pipeline)["contacts"] == len(sandbox.truth("contacts"))
    assert_records_match_truth(sandbox, "contacts", table_rows(pipeline, "contacts"))


def test_credentials_from_dlt_env_and_never_logged(sandbox: Sandbox, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    creds = sandbox.credentials
    wrong = "wrong-token-" + uuid.uuid4().hex
    for name, value in {"API_KEY": creds.api_key, "ACCESS_TOKEN": wrong,
                        "API_VERSION": "v3", "BASE_URL": sandbox.base_url}.items():
        monkeypatch.setenv(f"SOURCES__CONSTANT_CONTACT__{name}", value)
    monkeypatch.chdir(tmp_path)
    pipeline = dlt.pipeline("cc", destination=dlt.destinations.duckdb(str(tmp_path / "w.db")),
                            dataset_name="cc", pipelines_dir=str(tmp_path / "pipelines"))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(Exception) as failed:
        pipeline.run(constant_contact().with_resources("contacts"))
    chain, cause = [], failed.value
    while cause is not None:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    assert any(isinstance(e, ReauthorizeRequired) for e in chain), chain
    assert not any(wrong in str(e) for e in chain)
    assert wrong not in caplog.text

    right = creds.v3_access_token
    monkeypatch.setenv("SOURCES__CONSTANT_CONTACT__ACCESS_TOKEN", right)
    pipeline.run(constant_contact().with_resources("contacts"))
    assert loaded_counts(pipeline)["contacts"] == len(V3Truth(sandbox).records("contacts"))
    assert right not in caplog.text and creds.api_key not in caplog.text
    # nor in the pipeline's own files (its state, schemas, trace)
    for path in (tmp_path / "pipelines").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert right.encode() not in data and wrong.encode() not in data, path
    # an access token alone is used as it is: no token store is created
    assert not (tmp_path / DEFAULT_STATE_DIR).exists()


def test_v3_refresh_token_rotates_through_the_token_store(sandbox: Sandbox,
                                                          tmp_path: Path) -> None:
    tokens = v3_tokens_by_pkce(sandbox)
    store = f"sqlite:///{tmp_path / 'tokens.db'}"
    pipeline = dlt.pipeline("cc", destination=dlt.destinations.duckdb(str(tmp_path / "w.db")),
                            dataset_name="cc", pipelines_dir=str(tmp_path / "pipelines"))

    def run() -> None:
        # no access token: the source refreshes with the refresh token, and Constant
        # Contact rotates it (the old one is void after one use)
        source = constant_contact(api_key=sandbox.credentials.api_key, api_version="v3",
                                  base_url=sandbox.base_url, qps_limit=None, daily_limit=None,
                                  access_token=None, refresh_token=tokens["refresh_token"],
                                  token_store=store)
        pipeline.run(source.with_resources("contact_lists"))

    run()
    # the secret's refresh token is void by now: the rotated one, kept in the store, wins
    run()
    assert_v3_records_match(V3Truth(sandbox), "contact_lists",
                            table_rows(pipeline, "contact_lists"))


README = Path(__file__).parents[2] / "README.md"


def test_the_readme_snippet_runs_as_written(sandbox: Sandbox, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Use it from dlt"):]
    snippet = re.search(r"```python\n(.*?)```", section, re.S)
    assert snippet is not None
    creds = sandbox.credentials
    for name, value in {"API_KEY": creds.api_key, "ACCESS_TOKEN": creds.v3_access_token,
                        "BASE_URL": sandbox.base_url}.items():
        monkeypatch.setenv(f"SOURCES__CONSTANT_CONTACT__{name}", value)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.chdir(tmp_path)

    namespace: dict[str, Any] = {}
    exec(compile(snippet.group(1), "README.md", "exec"), namespace)
    pipeline: dlt.Pipeline = namespace["pipeline"]
    assert dataset_tables(pipeline) == {"contacts", "contact_lists"}
    truth = V3Truth(sandbox)
    for table in ("contacts", "contact_lists"):
        assert_v3_records_match(truth, table, table_rows(pipeline, table))


def test_a_source_object_run_again_reads_afresh(sandbox: Sandbox, tmp_path: Path) -> None:
    # an orchestrator's code location builds the source once and runs it many times
    pipeline = dlt.pipeline("cc", destination=dlt.destinations.duckdb(str(tmp_path / "w.db")),
                            dataset_name="cc", pipelines_dir=str(tmp_path / "pipelines"))
    source = source_for(sandbox, clock=sandbox.account.clock.now).with_resources(
        "contact_tracking", "email_campaign_summary")
    campaigns = "GET /v2/emailmarketing/campaigns"
    pipeline.run(source)
    assert sandbox.counters.count(campaigns) == 1  # listed once, shared by both tables

    new = sandbox.account.send_campaign(activities=12)
    sandbox.counters.reset()
    pipeline.run(source)
    assert sandbox.counters.count(campaigns) == 1  # listed again: the new campaign is seen
    tracking = table_rows(pipeline, "contact_tracking")
    assert any(str(r["campaign_id"]) == str(new) for r in tracking)
    assert_records_match_truth(sandbox, "contact_tracking", tracking)
    assert_records_match_truth(sandbox, "email_campaign_summary",
                               table_rows(pipeline, "email_campaign_summary"),
                               ignore=("end_date",))
    # each row names the dlt load that wrote it
    loads = {r["load_id"] for r in table_rows(pipeline, "_dlt_loads")}
    assert len(loads) == 2
    assert {r["_ctctsync_run_id"] for r in tracking} == loads
