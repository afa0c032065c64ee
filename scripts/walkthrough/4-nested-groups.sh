# A tree: a site, its floors (Group API: parent by UUID), a room (customer API: parent by slug)
SITE=$(curl -s -H "$H" -X POST $B/customer/device-groups -H "$J" -d '{"group_id": "grp-site-a", "name": "Site A"}' | field id)
FLOOR=$(curl -s -H "$H" -X POST $B/api/groups -H "$J" -d "{\"name\": \"Site A floor 1\", \"parent_id\": \"$SITE\"}" | field id)
curl -s -H "$H" -X POST $B/customer/device-groups -H "$J" -d "{\"group_id\": \"grp-room-101\", \"name\": \"Room 101\",
  \"parent_id\": \"$(curl -s -H "$H" $B/api/groups/$FLOOR | field group_id)\"}"
#→
T1=$(curl -s -H "$H" -X POST $B/api/devices -H "$J" -d '{"name": "Room 101 temp", "threshold_warning_upper": 30}' | field id)
T2=$(curl -s -H "$H" -X POST $B/api/devices -H "$J" -d '{"name": "Floor 1 temp", "threshold_warning_upper": 30}' | field id)
curl -s -H "$H" -X PUT $B/customer/device-groups/grp-room-101/devices/$T1 >/dev/null
curl -s -H "$H" -X PUT $B/api/groups/$FLOOR -H "$J" -d "{\"device_ids\": [\"$T1\", \"$T2\"]}" >/dev/null
curl -s -H "$H" -X POST $B/api/devices/$T1/readings -H "$J" -d '{"value": 35}' >/dev/null
curl -s -H "$H" -X POST $B/api/devices/$T2/readings -H "$J" -d '{"value": 21}' >/dev/null

# The site has no device of its own; with its descendants, each device counts once (Room 101
# temp is in the room and on the floor)
curl -s -H "$H" $B/api/groups/$SITE/alerts
#→
curl -s -H "$H" "$B/api/groups/$SITE/alerts?include_descendants=true"
#→

# A window naming the site covers its whole tree, as the tree is now
curl -s -H "$H" -X POST $B/customer/maintenance-windows -H "$J" -d '{"name": "Site A works", "starts_at": "2026-01-01T00:00:00Z",
  "group_ids": ["grp-site-a"]}' | field window_id > /tmp/site-window
curl -s -H "$H" "$B/customer/maintenance-windows/$(cat /tmp/site-window)/devices" | python3 -c 'import json,sys; print([d["name"] for d in json.load(sys.stdin)["devices"]])'
#→

# Cycles and a ninth level are refused, naming parent_id; deleting a parent moves its children to the top
curl -s -w ' %{http_code}\n' -H "$H" -X PATCH $B/customer/device-groups/grp-site-a -H "$J" -d '{"parent_id": "grp-room-101"}'
#→
curl -s -w ' %{http_code}\n' -H "$H" -X POST $B/api/groups -H "$J" -d '{"name": "Lost", "parent_id": "grp-site-a"}'
#→
curl -s -H "$H" -X DELETE $B/customer/device-groups/grp-site-a >/dev/null
curl -s -H "$H" $B/api/groups/$FLOOR | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["parent_id"]))'
#→
