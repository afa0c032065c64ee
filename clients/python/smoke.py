"""Smoke test of the generated Python client against a live iot-api.

Run by scripts/clients.sh (`make clients`), which generates the client from
openapi/openapi.json into target/clients/python/ and puts it on PYTHONPATH, starts a server
on the embedded store and passes its address and an admin token:

    IOT_BASE_URL=http://127.0.0.1:PORT IOT_TOKEN=... python clients/python/smoke.py

It only talks to the server through the generated `iot_api_client` package: two devices with
thresholds, a group of them (Group API), a maintenance window over one device's site
(customer API), a bulk ingest, then the group's alert summary, details and readings. Every
answer is checked (status code, parsed type, values); any mismatch exits non-zero.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from http import HTTPStatus
from typing import Any

from iot_api_client import AuthenticatedClient, Client
from iot_api_client.api.alerts import acknowledge_alert, get_alert, list_alerts
from iot_api_client.api.customer_maintenance_windows import create_maintenance_window
from iot_api_client.api.devices import create_device
from iot_api_client.api.groups import create_group, get_group, get_group_alerts, list_group_readings
from iot_api_client.api.health import health_live
from iot_api_client.api.readings import ingest_readings
from iot_api_client.models import (
    AckMode,
    Alert,
    AlertAck,
    AlertDetail,
    AlertKind,
    AlertList,
    AlertStateFilter,
    AlertStatus,
    AlertSummaryView,
    DeviceCreate,
    DeviceStatus,
    DeviceView,
    ErrorBody,
    GroupCreate,
    GroupDetailView,
    GroupReadingsView,
    Health,
    IngestAccepted,
    MaintenanceWindowCreate,
    MaintenanceWindowView,
    ReadingIn,
    ReadingsIngest,
    Severity,
    WindowStatus,
)

failures: list[str] = []


def check(what: str, actual: Any, expected: Any) -> None:
    """Records a mismatch instead of stopping, so one run reports every difference."""
    if actual == expected:
        print(f"  ok    {what} = {actual!r}")
    else:
        print(f"  FAIL  {what} = {actual!r}, expected {expected!r}")
        failures.append(what)


def call(what: str, endpoint: Any, status: HTTPStatus, parsed_type: type, **kwargs: Any) -> Any:
    """Calls `endpoint.sync_detailed`, requires the status code and the parsed answer's type."""
    response = endpoint.sync_detailed(**kwargs)
    if response.status_code != status or not isinstance(response.parsed, parsed_type):
        print(f"  FAIL  {what}: HTTP {int(response.status_code)} {response.content[:300]!r}")
        print(f"        expected HTTP {int(status)} with a {parsed_type.__name__}")
        sys.exit(1)
    print(f"  ok    {what}: HTTP {int(response.status_code)} {parsed_type.__name__}")
    return response.parsed


def main() -> int:
    base_url = os.environ["IOT_BASE_URL"]
    token = os.environ["IOT_TOKEN"]
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    print("health")
    health = call("GET /health/live", health_live, HTTPStatus.OK, Health, client=anonymous)
    check("health.status", health.status, "ok")

    print("devices (POST /api/devices)")
    sensor_1 = call(
        "create_device Smoke Sensor 1",
        create_device,
        HTTPStatus.CREATED,
        DeviceView,
        client=client,
        body=DeviceCreate(
            name="Smoke Sensor 1",
            unit="°C",
            status=DeviceStatus.CONNECTED,
            site_id="smoke-site-a",
            threshold_warning_lower=0.0,
            threshold_warning_upper=30.0,
            threshold_critical_lower=-10.0,
            threshold_critical_upper=40.0,
        ),
    )
    sensor_2 = call(
        "create_device Smoke Sensor 2",
        create_device,
        HTTPStatus.CREATED,
        DeviceView,
        client=client,
        body=DeviceCreate(
            name="Smoke Sensor 2",
            unit="°C",
            site_id="smoke-site-b",
            threshold_warning_upper=30.0,
            threshold_critical_upper=40.0,
        ),
    )
    check("sensor_1.status", sensor_1.status, DeviceStatus.CONNECTED)
    check("sensor_1.threshold_critical_upper", sensor_1.threshold_critical_upper, 40.0)
    check("sensor_2.status (default)", sensor_2.status, DeviceStatus.DISCONNECTED)
    check("sensor_2.threshold_warning_lower (unset)", sensor_2.threshold_warning_lower, None)

    print("group (POST /api/groups)")
    group = call(
        "create_group Smoke Group",
        create_group,
        HTTPStatus.CREATED,
        GroupDetailView,
        client=client,
        body=GroupCreate(
            name="Smoke Group",
            description="Made by clients/python/smoke.py",
            device_ids=[sensor_1.id, sensor_2.id],
        ),
    )
    check("group.devices (by name)", [d.name for d in group.devices], ["Smoke Sensor 1", "Smoke Sensor 2"])
    check(
        "group.alert_summary before readings",
        group.alert_summary.to_dict(),
        {
            "normal": 2,
            "warning": 0,
            "critical": 0,
            "in_maintenance": 0,
            "suppressed": 0,
            "freshness": {"fresh": 0, "stale": 0, "no_data": 2},
            "open_alerts": 0,
            "acknowledged": 0,
        },
    )
    taken = call(
        "create_group with the same name",
        create_group,
        HTTPStatus.BAD_REQUEST,
        ErrorBody,
        client=client,
        body=GroupCreate(name="Smoke Group"),
    )
    check("error.code", taken.code, "GROUP_001")

    print("maintenance window (POST /customer/maintenance-windows)")
    window = call(
        "create_maintenance_window over smoke-site-b",
        create_maintenance_window,
        HTTPStatus.OK,
        MaintenanceWindowView,
        client=client,
        body=MaintenanceWindowCreate(
            name="Smoke overhaul",
            starts_at=now - dt.timedelta(hours=1),
            site_ids=["smoke-site-b"],
        ),
    )
    check("window.status", window.status, WindowStatus.ACTIVE)
    check("window.site_ids", window.site_ids, ["smoke-site-b"])

    print("readings (POST /api/readings)")

    def minutes(n: int) -> dt.datetime:
        return now - dt.timedelta(minutes=n)

    batch = [
        # Sensor 1: warning 20 minutes ago, normal now; one reading two days old.
        ReadingIn(device_id=sensor_1.id, timestamp=now - dt.timedelta(hours=48), value=50.0),
        ReadingIn(device_id=sensor_1.id, timestamp=minutes(20), value=35.0),
        ReadingIn(device_id=sensor_1.id, timestamp=minutes(10), value=25.5),
        # Sensor 2: normal 25 minutes ago, critical now (and in maintenance).
        ReadingIn(device_id=sensor_2.id, timestamp=minutes(25), value=20.0),
        ReadingIn(device_id=sensor_2.id, timestamp=minutes(5), value=45.0),
    ]
    accepted = call(
        "ingest_readings (5)",
        ingest_readings,
        HTTPStatus.CREATED,
        IngestAccepted,
        client=client,
        body=ReadingsIngest(readings=batch),
    )
    check("accepted", accepted.accepted, 5)

    print("alert summary (GET /api/groups/{group_id}/alerts)")
    summary = call(
        "get_group_alerts", get_group_alerts, HTTPStatus.OK, AlertSummaryView, client=client, group_id=group.id
    )
    check(
        "alert summary",
        summary.to_dict(),
        {
            "normal": 1,
            "warning": 0,
            "critical": 1,
            "in_maintenance": 1,
            "suppressed": 1,
            "freshness": {"fresh": 2, "stale": 0, "no_data": 0},
            "open_alerts": 1,
            "acknowledged": 0,
        },
    )

    print("group details (GET /api/groups/{group_id})")
    detail = call("get_group", get_group, HTTPStatus.OK, GroupDetailView, client=client, group_id=group.id)
    check("detail.alert_summary", detail.alert_summary.to_dict(), summary.to_dict())
    check(
        "detail.devices (name, alert_status, in_maintenance)",
        [(d.name, d.alert_status, d.in_maintenance) for d in detail.devices],
        [("Smoke Sensor 1", AlertStatus.NORMAL, False), ("Smoke Sensor 2", AlertStatus.CRITICAL, True)],
    )

    print("alerts (GET /api/alerts, GET /api/alerts/{id}, POST /api/alerts/{id}/ack)")
    open_alerts = call(
        "list_alerts state=open",
        list_alerts,
        HTTPStatus.OK,
        AlertList,
        client=client,
        state=AlertStateFilter.OPEN,
        group_id=str(group.id),
    )
    check(
        "open alerts (device, kind, severity, suppressed)",
        [(a.device_name, a.kind, a.severity, a.suppressed) for a in open_alerts.alerts],
        [("Smoke Sensor 2", AlertKind.THRESHOLD, Severity.CRITICAL, True)],
    )
    check("open alerts next_cursor", open_alerts.next_cursor, None)
    alert = open_alerts.alerts[0]
    one = call("get_alert", get_alert, HTTPStatus.OK, AlertDetail, client=client, id=alert.id)
    check("alert events (type, suppressed)", [(e.type_, e.suppressed) for e in one.events][:1], [("opened", True)])
    acked = call(
        "acknowledge_alert",
        acknowledge_alert,
        HTTPStatus.OK,
        Alert,
        client=client,
        id=alert.id,
        body=AlertAck(mode=AckMode.UNTIL_RESOLVED, note="smoke"),
    )
    check("acknowledgement.note", acked.acknowledgement.note, "smoke")

    print("group readings (GET /api/groups/{group_id}/readings)")
    day = call(
        "list_group_readings hours=24",
        list_group_readings,
        HTTPStatus.OK,
        GroupReadingsView,
        client=client,
        group_id=group.id,
        hours=24,
    )
    check("readings.group_id", day.group_id, group.id)
    check("readings.total (24 h)", day.total, 4)
    check("len(readings) (24 h)", len(day.readings), 4)
    check(
        "readings newest first (device, value)",
        [(r.device_name, r.value) for r in day.readings],
        [("Smoke Sensor 2", 45.0), ("Smoke Sensor 1", 25.5), ("Smoke Sensor 1", 35.0), ("Smoke Sensor 2", 20.0)],
    )
    check("readings timestamps in UTC", {r.timestamp.utcoffset() for r in day.readings}, {dt.timedelta(0)})
    check("readings units", {r.unit for r in day.readings}, {"°C"})
    three_days = call(
        "list_group_readings hours=72",
        list_group_readings,
        HTTPStatus.OK,
        GroupReadingsView,
        client=client,
        group_id=group.id,
        hours=72,
    )
    check("readings.total (72 h)", three_days.total, 5)
    newest = call(
        "list_group_readings limit=1",
        list_group_readings,
        HTTPStatus.OK,
        GroupReadingsView,
        client=client,
        group_id=group.id,
        limit=1,
    )
    check(
        "newest reading",
        [(r.device_id, r.value, r.timestamp) for r in newest.readings],
        [(sensor_2.id, 45.0, minutes(5))],
    )
    refused = call(
        "list_group_readings hours=0",
        list_group_readings,
        HTTPStatus.UNPROCESSABLE_ENTITY,
        ErrorBody,
        client=client,
        group_id=group.id,
        hours=0,
    )
    check("error.detail names the parameter", refused.detail.split(":")[0], "hours")

    if failures:
        print(f"smoke: {len(failures)} mismatch(es): {', '.join(failures)}")
        return 1
    print(
        f"smoke: passed; group {group.id} ({detail.group_id}): "
        f"alert summary {summary.to_dict()}, {day.total} readings in 24 h, {three_days.total} in 72 h"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
