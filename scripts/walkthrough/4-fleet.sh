# A labelled fleet: labels are free key/value pairs; device lists filter by them (all must hold)
P1=$(curl -s -H "$H" -X POST $B/api/devices -H "$J" -d '{"name": "Valve 1", "unit": "bar", "site_id": "plant-1",
  "labels": {"line": "a", "floor": "1"}, "threshold_warning_upper": 5}' | field id)
P2=$(curl -s -H "$H" -X POST $B/api/devices -H "$J" -d '{"name": "Valve 2", "unit": "bar", "site_id": "plant-1",
  "labels": {"line": "b", "floor": "1"}, "threshold_warning_upper": 5}' | field id)
P3=$(curl -s -H "$H" -X POST $B/api/devices -H "$J" -d '{"name": "Valve 3", "unit": "bar", "site_id": "plant-1",
  "labels": {"line": "a", "floor": "2"}, "threshold_warning_upper": 5}' | field id)
curl -s -H "$H" "$B/api/devices?label=line:a&label=floor:1" | python3 -c 'import json,sys; print([d["name"] for d in json.load(sys.stdin)])'
#→

# A dynamic group: its members are the devices its filter selects, now and as devices change.
# Preview a filter first (any role; nothing is stored), then create the group
curl -s -H "$H" -X POST $B/api/groups/preview -H "$J" -d '{"filter": {"labels": {"line": "a"}}}' \
  | python3 -c 'import json,sys; p=json.load(sys.stdin); print(p["count"], [d["name"] for d in p["devices"]])'
#→
curl -s -H "$H" -X POST $B/customer/device-groups -H "$J" -d '{"group_id": "grp-line-a", "name": "Line A",
  "filter": {"labels": {"line": "a"}, "site_ids": ["plant-1"]}}'
#→
# Valve 2 moves to line a: it joins the group; members are not added by hand (409)
curl -s -o /dev/null -H "$H" -X PUT $B/api/devices/$P2 -H "$J" -d '{"labels": {"line": "a", "floor": "1"}}'
curl -s -H "$H" $B/customer/device-groups/grp-line-a | field member_count
#→
curl -s -w ' %{http_code}\n' -H "$H" -X PUT $B/customer/device-groups/grp-line-a/devices/$P1
#→
# {"all": true} says "every device of the tenant"; an empty filter is refused
curl -s -w ' %{http_code}\n' -H "$H" -X POST $B/api/groups -H "$J" -d '{"name": "Everything", "filter": {}}'
#→

# See what a window would mute before saving it: dry_run=true stores nothing
curl -s -H "$H" -X POST "$B/customer/maintenance-windows?dry_run=true" -H "$J" -d '{"name": "Line A, floor 1",
  "starts_at": "2025-01-01T00:00:00Z", "group_ids": ["grp-line-a"], "labels": {"floor": "1"}}' \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["devices_in_scope"], [d["name"] for d in r["devices"]], r["warnings"])'
#→
curl -s -H "$H" -X POST "$B/customer/maintenance-windows?dry_run=true" -H "$J" \
  -d '{"name": "Typo", "starts_at": "2025-01-01T00:00:00Z", "group_ids": ["grp-line-z"]}' | field warnings
#→
# Saved with that typo, it is refused instead
curl -s -w ' %{http_code}\n' -H "$H" -X POST $B/customer/maintenance-windows -H "$J" \
  -d '{"name": "Typo", "starts_at": "2025-01-01T00:00:00Z", "group_ids": ["grp-line-z"]}'
#→
# Saved, it mutes them; a device says why it is (or will be) muted
curl -s -o /dev/null -H "$H" -X POST $B/customer/maintenance-windows -H "$J" -d '{"name": "Line A, floor 1",
  "starts_at": "2025-01-01T00:00:00Z", "group_ids": ["grp-line-a"], "labels": {"floor": "1"}}'
curl -s -H "$H" $B/api/devices/$P1/maintenance
#→
