"""The roadpulse collector: MQTT (wire protocol v1) in, InfluxDB line protocol out, at least once."""
