# Every night 22:00–06:00 Berlin time (a slot whose end is before its start runs past midnight)
NIGHTLY=$(curl -s -H "$H" -X POST $B/customer/maintenance-windows -H "$J" -d '{
  "name": "Nightly patching", "starts_at": "2025-01-01T00:00:00Z",
  "recurring": {"start_hour": 22, "end_hour": 6, "timezone": "Europe/Berlin"},
  "site_ids": ["plant-1"]}' | field window_id)

# Its occurrences, in UTC: note the daylight-saving change on 2025-03-30
curl -s -H "$H" "$B/customer/maintenance-windows/$NIGHTLY/occurrences?from=2025-03-28T00:00:00Z&limit=4"
#→

# A critical device at plant-1, in a group
BOILER=$(curl -s -H "$H" -X POST $B/api/devices -H "$J" -d '{"name": "Boiler", "site_id": "plant-1", "threshold_critical_upper": 90}' | field id)
curl -s -H "$H" -X POST $B/api/devices/$BOILER/readings -H "$J" -d '{"value": 95}'
#→
PLANT=$(curl -s -H "$H" -X POST $B/api/groups -H "$J" -d "{\"name\": \"Plant\", \"device_ids\": [\"$BOILER\"]}" | field id)

# The boiler's alert: open, critical, not suppressed yet
curl -s -H "$H" "$B/api/alerts?device_id=$BOILER"
#→

# An overhaul window covering plant-1 from now on: the boiler stays critical, and is suppressed
OVERHAUL=$(curl -s -H "$H" -X POST $B/customer/maintenance-windows -H "$J" -d "{\"name\": \"Overhaul\",
  \"starts_at\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\", \"site_ids\": [\"plant-1\"]}" | field window_id)
sleep 3   # the evaluator records the window's start within IOT_EVALUATOR_INTERVAL_MS (2 s)
curl -s -H "$H" $B/api/groups/$PLANT/alerts
#→
curl -s -H "$H" "$B/customer/maintenance-windows/$OVERHAUL/devices"
#→
ALERT=$(curl -s -H "$H" "$B/api/alerts?device_id=$BOILER" | python3 -c 'import json,sys; print(json.load(sys.stdin)["alerts"][0]["id"])')
curl -s -H "$H" $B/api/alerts/$ALERT
#→

# Acknowledge it until it resolves; end the window: the alert is announced again (unsuppressed)
curl -s -H "$H" -X POST $B/api/alerts/$ALERT/ack -H "$J" -d '{"mode": "until_resolved", "note": "overhaul crew on site"}'
#→
curl -s -H "$H" -X PATCH $B/customer/maintenance-windows/$OVERHAUL -H "$J" -d '{"enabled": false}' >/dev/null
sleep 3
curl -s -H "$H" $B/api/alerts/$ALERT
#→
curl -s -H "$H" $B/customer/maintenance-windows/$OVERHAUL/report
#→

# A reading back in range resolves it
curl -s -H "$H" -X POST $B/api/devices/$BOILER/readings -H "$J" -d '{"value": 70}'
#→
curl -s -H "$H" "$B/api/devices/$BOILER/alerts"
#→
