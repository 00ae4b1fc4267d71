"""Line protocol as influxd reads it: a strict parser, differential tests, the decoder fuzz."""
