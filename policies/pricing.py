"""The price table (`policies/prices.yaml`), read into a validated, typed object.

A malformed table stops with a message naming the row, so that an edit by hand cannot turn into
a silently wrong estimate. Looking a price up returns the row itself (value, source, date), so
every figure of an estimate can say where it came from.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

PRICES_FILE = Path(__file__).with_name("prices.yaml")


class PriceTableError(ValueError):
    """The price table is malformed; the message names the row."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Usd = Annotated[float, Field(ge=0)]


class _Row(_Model):
    usd: Usd
    per: Literal["hour", "month", "GB", "GB-month"]
    source: str | None = None
    evidence: str | None = None
    taken: datetime.date | None = None
    note: str | None = None
    vcpu: Annotated[int, Field(ge=1)] | None = None
    memory_gib: Annotated[float, Field(gt=0)] | None = Field(default=None, alias="memoryGib")


class _Block(_Model):
    source: str
    taken: datetime.date
    evidence: str | None = None
    note: str | None = None
    prices: dict[str, _Row]


class _Assumptions(_Model):
    nat_gateway_data_gb_per_month: Usd = Field(alias="natGatewayDataGbPerMonth")
    interface_endpoint_data_gb_per_month: Usd = Field(alias="interfaceEndpointDataGbPerMonth")
    nlb_capacity_units_per_hour: Usd = Field(alias="nlbCapacityUnitsPerHour")
    nlb_public_ipv4_addresses: Annotated[int, Field(ge=0)] = Field(alias="nlbPublicIpv4Addresses")
    s3_stored_gb_per_bucket: Usd = Field(alias="s3StoredGbPerBucket")
    ecr_stored_gb_per_repository: Usd = Field(alias="ecrStoredGbPerRepository")
    rds_backup_daily_change_fraction: Annotated[float, Field(ge=0, le=1)] = Field(
        alias="rdsBackupDailyChangeFraction"
    )
    cache_snapshot_gb_per_node: Usd = Field(alias="cacheSnapshotGbPerNode")
    log_ingest_gb_per_month: dict[str, Usd] = Field(alias="logIngestGbPerMonth", min_length=1)
    log_never_expires_months: Annotated[int, Field(ge=1)] = Field(alias="logNeverExpiresMonths")


class _Table(_Model):
    currency: Literal["USD"]
    hours_per_month: Annotated[float, Field(gt=0)] = Field(alias="hoursPerMonth")
    default_region: str = Field(alias="defaultRegion")
    assumptions: _Assumptions
    free_types: list[str] = Field(alias="freeTypes")
    regions: dict[str, dict[str, _Block]]


@dataclass(frozen=True)
class Price:
    """One row of the table, with the block's source, date and note filled in."""

    key: str  # "<region>/<block>/<item>"
    usd: float
    per: str
    source: str
    taken: datetime.date
    evidence: str | None
    note: str | None
    vcpu: int | None = None
    memory_gib: float | None = None

    @property
    def verified(self) -> bool:
        """Whether a published page with this figure was found when the row was written."""
        return self.evidence is not None


class PriceTable:
    def __init__(self, table: _Table) -> None:
        self._table = table
        self.hours_per_month = table.hours_per_month
        self.default_region = table.default_region
        self.assumptions = table.assumptions
        self.free_types = tuple(table.free_types)
        self._prices: dict[str, Price] = {}
        for region, blocks in table.regions.items():
            for name, block in blocks.items():
                for item, row in block.prices.items():
                    key = f"{region}/{name}/{item}"
                    self._prices[key] = Price(
                        key=key,
                        usd=row.usd,
                        per=row.per,
                        source=row.source or block.source,
                        taken=row.taken or block.taken,
                        evidence=row.evidence or block.evidence,
                        note=row.note or block.note,
                        vcpu=row.vcpu,
                        memory_gib=row.memory_gib,
                    )

    @property
    def regions(self) -> list[str]:
        return sorted(self._table.regions)

    def price(self, region: str, block: str, item: str) -> Price | None:
        return self._prices.get(f"{region}/{block}/{item}")

    def rows(self) -> list[Price]:
        return list(self._prices.values())

    def is_free(self, type_: str) -> bool:
        return any(fnmatchcase(type_, pattern) for pattern in self.free_types)

    def log_ingest_gb(self, log_group_name: str) -> float:
        for pattern, gb in self.assumptions.log_ingest_gb_per_month.items():
            if fnmatchcase(log_group_name, pattern):
                return gb
        return 0.0

    def assumption_values(self) -> dict[str, Any]:
        values: dict[str, Any] = self.assumptions.model_dump(by_alias=True)
        values["hoursPerMonth"] = self.hours_per_month
        return values


def parse_prices(document: Mapping[str, Any], where: str = "prices") -> PriceTable:
    try:
        table = _Table.model_validate(document)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
            for detail in error.errors()
        ]
        raise PriceTableError(f"{where}: " + "; ".join(problems)) from None
    if table.default_region not in table.regions:
        raise PriceTableError(f"{where}: defaultRegion {table.default_region!r} has no prices")
    return PriceTable(table)


@cache
def _load(path: Path) -> PriceTable:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise PriceTableError(f"cannot read the price table {path.name}: {error}") from error
    if not isinstance(document, dict):
        raise PriceTableError(f"{path.name} must hold a mapping")
    return parse_prices(document, path.name)


def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    """The price table (parsed once per path)."""
    return _load(path.resolve())
