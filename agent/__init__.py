"""The roadpulse agent: polls field devices on a gateway and publishes readings over MQTT."""
