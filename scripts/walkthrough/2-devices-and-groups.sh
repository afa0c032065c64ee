# Two devices with thresholds (writes need role admin or owner; the make-run token is admin)
D1=$(curl -s -H "$H" -X POST $B/api/devices -H "$J" -d '{"name": "Temperature Sensor 1", "unit": "°C", "status": "connected",
  "threshold_warning_lower": 0, "threshold_warning_upper": 30, "threshold_critical_lower": -10, "threshold_critical_upper": 40}' \
  | field id)
D2=$(curl -s -H "$H" -X POST $B/api/devices -H "$J" -d '{"name": "Temperature Sensor 2", "unit": "°C",
  "threshold_warning_upper": 30, "threshold_critical_upper": 40}' | field id)

# Readings: a batch (all stored or none), and a single one (timestamp defaults to now)
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
curl -s -H "$H" -X POST $B/api/readings -H "$J" -d "{\"readings\": [
  {\"device_id\": \"$D1\", \"timestamp\": \"$NOW\", \"value\": 25.5},
  {\"device_id\": \"$D2\", \"timestamp\": \"$NOW\", \"value\": 35.0}]}"
#→
curl -s -H "$H" -X POST $B/api/devices/$D1/readings -H "$J" -d '{"value": 26.0}'
#→
curl -s -H "$H" "$B/api/devices/$D1/readings?hours=24&limit=10"
#→
curl -s -H "$H" $B/api/devices/$D2
#→

# A group of both: the summary counts one normal (25.5→26.0) and one warning (35 > 30)
G=$(curl -s -H "$H" -X POST $B/api/groups -H "$J" -d "{\"name\": \"Building A Sensors\", \"device_ids\": [\"$D1\", \"$D2\"]}" | field id)
curl -s -H "$H" $B/api/groups/$G
#→
curl -s -H "$H" $B/api/groups/$G/alerts
#→
curl -s -H "$H" "$B/api/groups/$G/readings?hours=24&limit=100"
#→
curl -s -H "$H" -X PUT $B/api/groups/$G -H "$J" -d "{\"device_ids\": [\"$D1\"]}"
#→
curl -s -H "$H" $B/api/groups
#→

# The group's readings of the last hour as CSV ([start_time, end_time))
curl -s -H "$H" -H "Accept: text/csv" \
  "$B/api/groups/$G/readings?start_time=$(date -u -d '1 hour ago' +%FT%TZ)&end_time=$(date -u -d '1 minute' +%FT%TZ)"
#→
# (sent as Content-Disposition: attachment; filename="Building_A_Sensors-readings.csv")

# Pages: has_more says more follow; next_cursor, sent back with the same parameters, goes on
# exactly after the last reading of the page (none twice, none missed, whatever arrives between)
curl -s -H "$H" "$B/api/groups/$G/readings?hours=24&limit=1"
#→
NEXT=$(curl -s -H "$H" "$B/api/groups/$G/readings?hours=24&limit=1" | field next_cursor)
curl -s -H "$H" "$B/api/groups/$G/readings?hours=24&limit=1&cursor=$NEXT"
#→

# A whole range exported as NDJSON: streamed as read, one reading object per line
curl -s -H "$H" -H "Accept: application/x-ndjson" "$B/api/devices/$D1/readings?start_time=2020-01-01T00:00:00Z"
#→

# Correcting data: a device's readings in [start_time, end_time) deleted; its latest reading
# and state are those of what remains
curl -s -H "$H" -X DELETE "$B/api/devices/$D2/readings?start_time=2020-01-01T00:00:00Z&end_time=$(date -u -d '1 minute' +%FT%TZ)"
#→

# The same group in the customer API, by its slug
SLUG=$(curl -s -H "$H" $B/api/groups/$G | field group_id)
curl -s -H "$H" $B/customer/device-groups/$SLUG/devices
#→
curl -s -H "$H" -X PUT $B/customer/device-groups/$SLUG/devices/$D2
#→
curl -s -H "$H" -X DELETE $B/customer/device-groups/$SLUG/devices/$D2
#→

# Wrong requests
curl -s -w ' %{http_code}\n' -H "$H" -X POST $B/api/groups -H "$J" -d '{"name": "Building A Sensors"}'
#→
curl -s -w ' %{http_code}\n' -H "$H" -X POST $B/api/groups -H "$J" -d '{"name": "X", "device_ids": ["not-a-uuid"]}'
#→
curl -s -w ' %{http_code}\n' -H "$H" "$B/api/groups/$G/readings?hours=0"
#→
VIEWER=$(IOT_JWT_SECRET=dev-only-secret-do-not-use-in-production-0123456789 ./target/release/iot-api token --tenant demo --role viewer)
curl -s -w ' %{http_code}\n' -H "Authorization: Bearer $VIEWER" -X DELETE $B/api/groups/$G
#→
