"""Constant Contact in Dagster: one asset per table, loaded by ctctsync's dlt source.

Each table of the account becomes a Dagster asset (``dlt_constant_contact_contacts``, ...),
materialized together by one dlt pipeline run; a schedule runs it every hour. Key-based
tables load only what changed since their last run: the bookmarks live in the dlt
pipeline's state, so Dagster keeps nothing of its own.

Run it (docs/integrations.md, "Orchestrators")::

    pip install ctctsync dagster dagster-dlt dagster-webserver
    export SOURCES__CONSTANT_CONTACT__API_KEY=...        # the application's client id
    export SOURCES__CONSTANT_CONTACT__ACCESS_TOKEN=...   # or REFRESH_TOKEN (v3)
    dagster dev -f dagster_constant_contact.py

The tables land in the dataset ``constant_contact`` of the DuckDB file ``warehouse.duckdb``
in the current folder; another dlt destination is a change of ``destination=`` (its
credentials in ``.dlt/secrets.toml``).
"""

# no ``from __future__ import annotations``: Dagster reads the annotations at definition time
from collections.abc import Iterator
from typing import Any

import dlt
from dagster import AssetExecutionContext, Definitions, ScheduleDefinition, define_asset_job
from dagster_dlt import DagsterDltResource, dlt_assets

from ctctsync.dlt import constant_contact

TABLES = ("contacts", "contact_lists", "email_campaigns", "contact_tracking",
          "email_campaign_summary")
"""The tables to replicate (every table: drop ``.with_resources``)."""


@dlt_assets(
    dlt_source=constant_contact().with_resources(*TABLES),
    # DuckDB names its catalog after the file: a file named like the dataset is ambiguous
    dlt_pipeline=dlt.pipeline(pipeline_name="constant_contact",
                              destination=dlt.destinations.duckdb("warehouse.duckdb"),
                              dataset_name="constant_contact"),
    name="constant_contact",
    group_name="constant_contact",
)
def constant_contact_assets(context: AssetExecutionContext,
                            dlt: DagsterDltResource) -> Iterator[Any]:
    """Run the pipeline; Dagster records each table's rows as its asset's materialization."""
    yield from dlt.run(context=context)


constant_contact_job = define_asset_job("constant_contact_sync",
                                        selection=[constant_contact_assets])

defs = Definitions(
    assets=[constant_contact_assets],
    resources={"dlt": DagsterDltResource()},
    jobs=[constant_contact_job],
    schedules=[ScheduleDefinition(job=constant_contact_job, cron_schedule="0 * * * *")],
)
