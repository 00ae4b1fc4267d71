"""Simulated road-side devices for roadpulse: Modbus TCP/RTU, Vaisala ASCII and NMEA on loopback and ptys.

Entry points: `firmware_sim.runner.Simulator` (programmatic), `firmware_sim.cli.add_sim_parser`
(`roadpulse sim run|load`), `python -m firmware_sim`. See docs/simulator.md.
"""
