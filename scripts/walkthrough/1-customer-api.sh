B=http://127.0.0.1:8080
H="Authorization: Bearer $TOKEN"
J="Content-Type: application/json"   # curl -d alone would send a form type (415)
# field NAME: prints one field of the JSON object on stdin (the walk-through needs python3)
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# Create a group (group_id is generated as grp-xxxxxxxx when not given) and capture its slug
LOBBY=$(curl -s -H "$H" -X POST $B/customer/device-groups -H "$J" -d '{"name": "Lobby", "description": "Ground floor"}' | field group_id)
curl -s -H "$H" $B/customer/device-groups/$LOBBY
#→
curl -s -H "$H" -X POST $B/customer/device-groups -H "$J" -d '{"group_id": "grp-roof", "name": "Roof"}'
#→

# List (ordered by name, with member_count), rename, clear the description, delete
curl -s -H "$H" $B/customer/device-groups
#→
curl -s -H "$H" -X PATCH $B/customer/device-groups/grp-roof -H "$J" -d '{"name": "Roof East"}'
#→
curl -s -H "$H" -X PATCH $B/customer/device-groups/grp-roof -H "$J" -d '{"description": null}'
#→
curl -s -H "$H" -X DELETE $B/customer/device-groups/grp-roof
#→

# A nightly maintenance window, Monday to Friday 02:00–04:00 UTC; capture its id
MW=$(curl -s -H "$H" -X POST $B/customer/maintenance-windows -H "$J" -d '{
  "name": "Nightly patching",
  "starts_at": "2025-10-20T00:00:00Z",
  "recurring": {"dow": [1, 2, 3, 4, 5], "start_hour": 2, "end_hour": 4},
  "site_ids": ["site-1"]
}' | field window_id)
curl -s -H "$H" $B/customer/maintenance-windows
#→
curl -s -H "$H" -X PATCH $B/customer/maintenance-windows/$MW -H "$J" -d '{"enabled": false}'
#→
curl -s -H "$H" -X DELETE $B/customer/maintenance-windows/$MW
#→

# Wrong requests get a clear answer (-w prints the status after the body)
curl -s -w ' %{http_code}\n' -H "$H" -X PATCH $B/customer/device-groups/grp-nope -H "$J" -d '{}'
#→
curl -s -w ' %{http_code}\n' -H "$H" -X POST $B/customer/maintenance-windows \
     -H "$J" -d '{"name": "x", "starts_at": "2025-01-02T00:00:00Z", "ends_at": "2025-01-01T00:00:00Z"}'
#→
curl -s -w ' %{http_code}\n' $B/customer/device-groups
#→
