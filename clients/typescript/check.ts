// Type-checks the TypeScript types generated from openapi/openapi.json by openapi-typescript.
// scripts/clients.sh (`make clients`) generates them into target/clients/typescript/ and runs
// `tsc --noEmit --strict` on this file; nothing here runs. It also removes the
// `@ts-expect-error` lines and requires tsc to fail, so the check is shown to bite.
import type { components, operations, paths } from "../../target/clients/typescript/iot-api";

type Schemas = components["schemas"];
type GroupCreate = Schemas["GroupCreate"];
type GroupDetailView = Schemas["GroupDetailView"];
type GroupDeviceView = Schemas["GroupDeviceView"];
type AlertSummaryView = Schemas["AlertSummaryView"];
type AlertStatus = Schemas["AlertStatus"];
type MaintenanceWindowCreate = Schemas["MaintenanceWindowCreate"];
type ReadingsIngest = Schemas["ReadingsIngest"];
type GroupReadingsView = Schemas["GroupReadingsView"];
type GroupReadingsAnswer = Schemas["GroupReadingsOrBuckets"];

// Two types are the same when each extends the other.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): void {}

// The operations, by path and by operation id, use the component schemas.
type CreateGroupBody = NonNullable<operations["create_group"]["requestBody"]>["content"]["application/json"];
type CreateGroupCreated = operations["create_group"]["responses"][201]["content"]["application/json"];
type GroupAlertsOk = paths["/api/groups/{group_id}/alerts"]["get"]["responses"][200]["content"]["application/json"];
type GroupReadingsQuery = NonNullable<operations["list_group_readings"]["parameters"]["query"]>;
type GroupReadingsOk = operations["list_group_readings"]["responses"][200]["content"]["application/json"];
assertType<Equal<CreateGroupBody, GroupCreate>>();
assertType<Equal<CreateGroupCreated, GroupDetailView>>();
assertType<Equal<GroupAlertsOk, AlertSummaryView>>();
// Raw readings, or buckets with `interval` (issue 16).
assertType<Equal<GroupReadingsOk, GroupReadingsAnswer>>();
assertType<Equal<operations["list_group_readings"]["parameters"]["path"]["group_id"], string>>();

// Request bodies build with the required fields, and the optional ones are optional.
const group: GroupCreate = {
    name: "Building A Sensors",
    description: null,
    device_ids: ["6f1c3a52-7d4e-4c1b-9a0e-2b8f5d7c9e10", "0b7e4f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"],
};
const minimalGroup: GroupCreate = { name: "Roof" };
const window: MaintenanceWindowCreate = {
    name: "Nightly patching",
    starts_at: "2025-10-20T00:00:00Z",
    recurring: { dow: [1, 2, 3, 4, 5], start_hour: 2, end_hour: 4, timezone: "Europe/Berlin" },
    site_ids: ["site-1"],
};
const ingest: ReadingsIngest = {
    readings: [{ device_id: "6f1c3a52-7d4e-4c1b-9a0e-2b8f5d7c9e10", timestamp: "2025-10-20T10:30:00Z", value: 25.5 }],
};
const query: GroupReadingsQuery = { hours: 24, limit: 100 };

// Answers read with the fields' own types.
function deviceCount(summary: AlertSummaryView): number {
    return summary.normal + summary.warning + summary.critical;
}

function muted(summary: AlertSummaryView): boolean {
    return summary.suppressed > 0 && summary.suppressed <= summary.in_maintenance;
}

function describe(status: AlertStatus): string {
    switch (status) {
        case "normal":
            return "ok";
        case "warning":
            return "look";
        case "critical":
            return "act";
        default: {
            // A status added to the spec without a case here stops the type check.
            const unknown: never = status;
            return unknown;
        }
    }
}

function report(detail: GroupDetailView): string[] {
    const summary: AlertSummaryView = detail.alert_summary;
    const description: string | null | undefined = detail.description;
    const lines = detail.devices.map(
        (device: GroupDeviceView) =>
            `${device.name} [${device.unit}]: ${describe(device.alert_status)}` +
            (device.in_maintenance ? " (maintenance)" : ""),
    );
    lines.unshift(`${detail.name} (${detail.group_id}) ${description ?? ""}: ${deviceCount(summary)} devices`);
    if (muted(summary)) lines.push(`${summary.suppressed} alert(s) muted`);
    return lines;
}

function newest(readings: GroupReadingsView): number | undefined {
    const first = readings.readings[0];
    return readings.total > 0 && first !== undefined ? first.value : undefined;
}

// The check bites: a device id is a string, not a number.
// @ts-expect-error -- device_ids is string[] (format uuid), a number is refused
const wrongDeviceIds: GroupCreate = { name: "Wrong", device_ids: [42] };

export { group, minimalGroup, window, ingest, query, report, newest, wrongDeviceIds };
