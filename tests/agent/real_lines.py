"""Lines real devices send, from public documentation and captures, with what the agent must make of them.

Each case names its source. Expected values are worked out here from the definitions
(1 kn = 1852/3600 m/s, 1 mph = 0.44704 m/s, °C = (°F - 32) × 5/9, 1 bar = 1000 hPa,
1 mmHg = 1.33322387415 hPa, 1 inHg = 25.4 mmHg), not from the agent's code. A string
expected value `"bad:<reason>"` means quality bad with that reason; a field missing from
`expected` must not be stored from that line at all (the line does not carry that quantity).

Sources:
- WXT530: Vaisala WXT530 Series User Guide M211840EN (docs.vaisala.com), sections "Wind data message
  (aR1)", "Pressure, temperature and humidity data message (aR2)", "Polling with CRC", "CRC-16 computation",
  "Transducer table" and the NMEA 0183 XDR examples.
- WXT520: Vaisala WXT520 User's Guide M210906EN, wind sensor settings (speed units M, K, S, N).
- WXT536: Vaisala WXT536 User's Guide M211840EN-C, NMEA XDR examples (page 120).
- DOMAIN.md: the WXT composite message quoted in /work/shared/DOMAIN.md from the WXT manual.
- wxt536-capture: github.com/dwkennedy/wxt536, test.out (a WXT536 on a serial server).
- pynmea2: github.com/Knio/pynmea2, test/test_types.py (test_MWV, test_XDR).
- signalk: github.com/SignalK/nmea0183-signalk, test/MWV.js and test/XDR.js.
- go-nmea: github.com/adrianmo/go-nmea, mwv_test.go, xdr_test.go, mda_test.go.
- issue-17: the sentences and lines quoted in issue #17 (captures of three MWV instruments, WXT settings).
- WS425: Vaisala WINDCAP WS425 User's Guide, "NMEA Standard" MWV message definition (status A/V).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KN = 1852 / 3600
MPH = 0.44704
KMH = 1 / 3.6
MMHG_HPA = 1.33322387415
INHG_HPA = 25.4 * MMHG_HPA


def f_to_c(f: float) -> float:
    return (f - 32) * 5 / 9


@dataclass(frozen=True)
class Case:
    source: str
    parser: str
    line: str
    fields: list[dict[str, Any]]
    expected: dict[str, Any] = field(default_factory=dict)
    # The frame itself is refused and counted under this name (checksum, parse, garbage).
    refused: str | None = None


# Profile fields as the shipped profiles declare them (config/profiles/wxt_ascii.toml).
WXT = {
    "wind_dir_min": {"key": "Dn", "unit": "°", "device_unit": "D"},
    "wind_dir": {"key": "Dm", "unit": "°", "device_unit": "D"},
    "wind_dir_max": {"key": "Dx", "unit": "°", "device_unit": "D"},
    "wind_speed_min": {"key": "Sn", "unit": "m/s", "device_unit": "M"},
    "wind_speed": {"key": "Sm", "unit": "m/s", "device_unit": "M"},
    "wind_speed_max": {"key": "Sx", "unit": "m/s", "device_unit": "M"},
    "air_temp": {"key": "Ta", "unit": "°C", "device_unit": "C"},
    "internal_temp": {"key": "Tp", "unit": "°C", "device_unit": "C"},
    "rh": {"key": "Ua", "unit": "%", "device_unit": "P"},
    "pressure": {"key": "Pa", "unit": "hPa", "device_unit": "H"},
    "rain_accum": {"key": "Rc", "unit": "mm", "device_unit": "M"},
    "rain_duration": {"key": "Rd", "unit": "s", "device_unit": "s"},
    "precip_rate": {"key": "Ri", "unit": "mm/h", "device_unit": "M"},
    "heater_temp": {"key": "Th", "unit": "°C", "device_unit": "C"},
    "heating_voltage": {"key": "Vh", "unit": "V"},
    "supply_voltage": {"key": "Vs", "unit": "V", "device_unit": "V"},
    "ref_voltage": {"key": "Vr", "unit": "V", "device_unit": "V"},
    "ident": {"key": "Id", "type": "str"},
}


def wxt(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, **WXT[n]} for n in names]


ALL_WXT = list(WXT)

# config/profiles/wind_nmea.toml, plus relative wind kept in fields of its own.
MWV = [
    {"name": "wind_dir", "key": "MWV.1", "reference": "T", "unit": "°"},
    {"name": "wind_speed", "key": "MWV.3", "reference": "T", "unit": "m/s"},
    {"name": "wind_dir_rel", "key": "MWV.1", "reference": "R", "unit": "°"},
    {"name": "wind_speed_rel", "key": "MWV.3", "reference": "R", "unit": "m/s"},
]


def xdr(name: str, transducer: str, ident: str, unit: str, device_unit: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "key": "XDR", "transducer": transducer, "transducer_name": ident,
                           "unit": unit}
    if device_unit:
        out["device_unit"] = device_unit
    return out


# config/profiles/wind_nmea.toml's XDR fields (a generic talker naming TEMP, BARO, HUM) ...
GENERIC_XDR = [xdr("air_temp", "C", "TEMP", "°C", "C"), xdr("pressure", "P", "BARO", "hPa", "B"),
               xdr("rh", "H", "HUM", "%", "P")]
# ... and config/profiles/wxt_nmea.toml's (Vaisala names its transducers 0, 1, 2).
VAISALA_XDR = [
    xdr("wind_dir_min", "A", "0", "°", "D"), xdr("wind_dir", "A", "1", "°", "D"),
    xdr("wind_dir_max", "A", "2", "°", "D"),
    xdr("wind_speed_min", "S", "0", "m/s", "M"), xdr("wind_speed", "S", "1", "m/s", "M"),
    xdr("wind_speed_max", "S", "2", "m/s", "M"),
    xdr("air_temp", "C", "0", "°C", "C"), xdr("internal_temp", "C", "1", "°C", "C"), xdr("rh", "H", "0", "%", "P"),
    xdr("pressure", "P", "0", "hPa", "H"), xdr("rain_accum", "V", "0", "mm", "M"),
    xdr("rain_duration", "Z", "0", "s", "s"), xdr("precip_rate", "R", "0", "mm/h", "M"),
    xdr("heater_temp", "C", "2", "°C", "C"), xdr("heating_voltage", "U", "0", "V"),
    xdr("supply_voltage", "U", "1", "V", "V"), xdr("ref_voltage", "U", "2", "V", "V"),
]
# Attitude as two vendors name it.
ATTITUDE = [xdr("pitch", "A", "PTCH", "°", "D"), xdr("heel", "A", "ROLL", "°", "D")]
ATTITUDE_LONG = [xdr("pitch", "A", "PITCH", "°", "D"), xdr("heel", "A", "ROLL", "°", "D")]

CASES: list[Case] = [
    # ---- Vaisala ASCII, in the units the profile declares
    Case("WXT530 aR1 example", "keyvalue", "0R1,Dn=236D,Dm=283D,Dx=031D,Sn=0.0M,Sm=1.0M,Sx=2.2M", wxt(*ALL_WXT),
         {"wind_dir_min": 236.0, "wind_dir": 283.0, "wind_dir_max": 31.0, "wind_speed_min": 0.0, "wind_speed": 1.0,
          "wind_speed_max": 2.2}),
    Case("WXT530 aR2 example", "keyvalue", "0R2,Ta=23.6C,Ua=14.2P,Pa=1026.6H", wxt(*ALL_WXT),
         {"air_temp": 23.6, "rh": 14.2, "pressure": 1026.6}),
    Case("DOMAIN.md WXT composite", "keyvalue",
         "0R0,Dn=000#,Dm=106#,Dx=182#,Sn=1.1#,Sm=4.0#,Sx=6.6#,Ta=16.0C,Ua=50.0P,Pa=1018.1H,Rc=0.00M,Rd=0s,Ri=0.0M,"
         "Hc=0.0M,Hd=0s,Hi=0.0M,Rp=0.0M,Hp=0.0M,Th=15.6C,Vh=0.0N,Vs=15.2V,Vr=3.498V,Id=Ant", wxt(*ALL_WXT),
         {"wind_dir_min": "bad:invalid", "wind_dir": "bad:invalid", "wind_dir_max": "bad:invalid",
          "wind_speed_min": "bad:invalid", "wind_speed": "bad:invalid", "wind_speed_max": "bad:invalid",
          "air_temp": 16.0, "rh": 50.0, "pressure": 1018.1, "rain_accum": 0.0, "rain_duration": 0.0,
          "precip_rate": 0.0, "heater_temp": 15.6, "heating_voltage": 0.0, "supply_voltage": 15.2,
          "ref_voltage": 3.498, "ident": "Ant"}),
    Case("wxt536-capture", "keyvalue", "0R1,Dn=160D,Dm=182D,Dx=197D,Sn=3.0M,Sm=4.1M,Sx=5.8M", wxt(*ALL_WXT),
         {"wind_dir_min": 160.0, "wind_dir": 182.0, "wind_dir_max": 197.0, "wind_speed_min": 3.0, "wind_speed": 4.1,
          "wind_speed_max": 5.8}),
    Case("wxt536-capture", "keyvalue", "0R3,Rc=0.01M,Rd=10s,Ri=0.6M,Hc=0.0M,Hd=0s,Hi=0.0M", wxt(*ALL_WXT),
         {"rain_accum": 0.01, "rain_duration": 10.0, "precip_rate": 0.6}),
    Case("wxt536-capture", "keyvalue", "0R5,Th=16.0C,Vh=14.1N,Vs=14.3V,Vr=3.621V", wxt(*ALL_WXT),
         {"heater_temp": 16.0, "heating_voltage": 14.1, "supply_voltage": 14.3, "ref_voltage": 3.621}),
    Case("wxt536-capture", "keyvalue", "0R2,Ta=16.1C,Ua=79.3P,Pa=959.7H", wxt(*ALL_WXT),
         {"air_temp": 16.1, "rh": 79.3, "pressure": 959.7}),
    Case("wxt536-capture (not a frame)", "keyvalue", "dud line", wxt(*ALL_WXT), refused="parse"),
    # ---- Vaisala ASCII set to other units (issue-17; WXT520/WXT530 unit settings)
    Case("issue-17 (WXT set to °F and bar)", "keyvalue", "0R2,Ta=74.6F,Ua=14.2P,Pa=1.0133B", wxt(*ALL_WXT),
         {"air_temp": f_to_c(74.6), "rh": 14.2, "pressure": 1013.3}),
    Case("WXT530 pressure units (inHg, mmHg, Pa)", "keyvalue", "0R2,Ta=-40.0F,Pa=29.92I", wxt(*ALL_WXT),
         {"air_temp": -40.0, "pressure": 29.92 * INHG_HPA}),
    Case("WXT530 pressure units (inHg, mmHg, Pa)", "keyvalue", "0R2,Ta=32.0F,Pa=760.0M", wxt(*ALL_WXT),
         {"air_temp": 0.0, "pressure": 760.0 * MMHG_HPA}),
    Case("WXT530 pressure units (inHg, mmHg, Pa)", "keyvalue", "0R2,Pa=101330P", wxt(*ALL_WXT),
         {"pressure": 1013.3}),
    Case("WXT520 speed units (knots, km/h, mph)", "keyvalue", "0R1,Dn=236D,Dm=283D,Dx=031D,Sn=0.0N,Sm=13.4N,Sx=22.0N",
         wxt(*ALL_WXT), {"wind_dir_min": 236.0, "wind_dir": 283.0, "wind_dir_max": 31.0, "wind_speed_min": 0.0,
                         "wind_speed": 13.4 * KN, "wind_speed_max": 22.0 * KN}),
    Case("WXT520 speed units (knots, km/h, mph)", "keyvalue", "0R1,Sn=3.6K,Sm=10.0S,Sx=36.0K", wxt(*ALL_WXT),
         {"wind_speed_min": 1.0, "wind_speed": 10.0 * MPH, "wind_speed_max": 36.0 * KMH}),
    # A letter that is no unit of the quantity is never stored as good.
    Case("WXT530 transducer table (unknown letters)", "keyvalue", "0R2,Ta=290.0K,Ua=14.2H,Pa=1026.6C",
         wxt(*ALL_WXT), {"air_temp": "bad:unit:K", "rh": "bad:unit:H", "pressure": "bad:unit:C"}),
    Case("WXT530 transducer table (unknown letters)", "keyvalue", "0R1,Dm=283M,Sm=1.0D,Sx=2.2", wxt(*ALL_WXT),
         {"wind_dir": "bad:unit:M", "wind_speed": "bad:unit:D", "wind_speed_max": "bad:unit:none"}),
    # ---- Vaisala CRC mode: the command CRCs and the CRC'd answer the guide prints all check; a line
    # whose CRC is wrong is refused. (The guide's example wind answer `...Sx=2.2MLFj` does not match the
    # guide's own algorithm, which every other example there does: its values were edited. It is refused.)
    Case("WXT530 Polling with CRC (example answer)", "keyvalue",
         "0r1,Dn=236D,Dm=283D,Dx=031D,Sn=0.0M,Sm=1.0M,Sx=2.2MLFj", wxt(*ALL_WXT), refused="checksum"),
    Case("WXT530 Polling with CRC (CRC of that answer by the guide's algorithm)", "keyvalue",
         "0r1,Dn=236D,Dm=283D,Dx=031D,Sn=0.0M,Sm=1.0M,Sx=2.2MJ\\Y", wxt(*ALL_WXT),
         {"wind_dir_min": 236.0, "wind_dir": 283.0, "wind_dir_max": 31.0, "wind_speed_min": 0.0, "wind_speed": 1.0,
          "wind_speed_max": 2.2}),
    Case("WXT530 Polling with CRC (one character changed)", "keyvalue",
         "0r1,Dn=236D,Dm=283D,Dx=031D,Sn=0.0M,Sm=1.0M,Sx=2.3MJ\\Y", wxt(*ALL_WXT), refused="checksum"),
    # ---- NMEA MWV: reference, unit and status decide what the numbers are
    Case("pynmea2 test_MWV", "nmea", "$IIMWV,271.0,R,000.2,N,A*3B", MWV,
         {"wind_dir_rel": 271.0, "wind_speed_rel": 0.2 * KN}),
    Case("issue-17 (MWV in knots)", "nmea", "$IIMWV,338,R,13.41,N,A*2C", MWV,
         {"wind_dir_rel": 338.0, "wind_speed_rel": 13.41 * KN}),
    Case("signalk MWV.js (true wind)", "nmea", "$IIMWV,074,T,05.85,N,A*2E", MWV,
         {"wind_dir": 74.0, "wind_speed": 5.85 * KN}),
    Case("signalk MWV.js (apparent wind)", "nmea", "$IIMWV,336,R,13.41,N,A*22", MWV,
         {"wind_dir_rel": 336.0, "wind_speed_rel": 13.41 * KN}),
    Case("signalk MWV.js (km/h)", "nmea", "$IIMWV,074,T,05.85,K,A*2B", MWV,
         {"wind_dir": 74.0, "wind_speed": 5.85 * KMH}),
    Case("signalk MWV.js (m/s)", "nmea", "$IIMWV,074,T,05.85,M,A*2D", MWV, {"wind_dir": 74.0, "wind_speed": 5.85}),
    Case("signalk MWV.js (empty sentence)", "nmea", "$IIMWV,,,,*4C", MWV, {}),
    Case("go-nmea mwv_test.go", "nmea", "$WIMWV,12.1,T,10.1,N,A*27", MWV, {"wind_dir": 12.1, "wind_speed": 10.1 * KN}),
    Case("go-nmea mwv_test.go (no data, status V)", "nmea", "$WIMWV,,T,,N,V*32", MWV,
         {"wind_dir": "bad:invalid", "wind_speed": "bad:invalid"}),
    Case("WS425 MWV definition (status V: invalid data)", "nmea", "$WIMWV,120.0,T,5.0,M,V*37", MWV,
         {"wind_dir": "bad:status:V", "wind_speed": "bad:status:V"}),
    # ---- NMEA checksums: exactly two hex digits
    Case("issue-17 (checksum text)", "nmea", "$IIMWV,338,R,13.41,N,A*2", MWV, refused="checksum"),
    Case("issue-17 (checksum text)", "nmea", "$IIMWV,338,R,13.41,N,A* 2C", MWV, refused="checksum"),
    Case("issue-17 (checksum text)", "nmea", "$IIMWV,338,R,13.41,N,A*+0", MWV, refused="checksum"),
    Case("issue-17 (checksum text)", "nmea", "$IIMWV,338,R,13.41,N,A*F", MWV, refused="checksum"),
    Case("issue-17 (checksum text)", "nmea", "$IIMWV,338,R,13.41,N,A*2C2", MWV, refused="checksum"),
    Case("issue-17 (checksum text)", "nmea", "$IIMWV,338,R,13.41,N,A", MWV, refused="checksum"),
    Case("pynmea2 test_MWV (one digit off)", "nmea", "$IIMWV,271.0,R,000.2,N,A*3C", MWV, refused="checksum"),
    # ---- NMEA XDR: by transducer type and name, never by position
    Case("pynmea2 test_XDR", "nmea", "$YXXDR,A,-64.437,M,N,A,054.454,D,E,C,17.09,C,T-N1052*46",
         [*GENERIC_XDR, xdr("probe_temp", "C", "T-N1052", "°C", "C"), xdr("angle_e", "A", "E", "°", "D")],
         {"probe_temp": 17.09, "angle_e": 54.454}),
    Case("go-nmea xdr_test.go (water temperature)", "nmea", "$SDXDR,C,23.15,C,WTHI*70",
         [*GENERIC_XDR, xdr("water_temp", "C", "WTHI", "°C", "C")], {"water_temp": 23.15}),
    Case("go-nmea xdr_test.go (attitude and magnetometer)", "nmea",
         "$HCXDR,A,171,D,PITCH,A,-37,D,ROLL,G,367,,MAGX,G,2420,,MAGY,G,-8984,,MAGZ*41",
         [*GENERIC_XDR, *ATTITUDE_LONG], {"pitch": 171.0, "heel": -37.0}),
    Case("go-nmea xdr_test.go (a field lost: quadruplets out of step)", "nmea",
         "$HCXDR,A,171,D,PITCH,A,-37,D,ROLL,G,367,,MAGX,G,2420,MAGY,G,-8984,,MAGZ*6d",
         [*GENERIC_XDR, *ATTITUDE_LONG], refused="parse"),
    Case("go-nmea xdr_test.go (WXT supervisor)", "nmea", "$WIXDR,C,9.7,C,2,U,24.1,N,0,U,24.4,V,1,U,3.510,V,2*46",
         [*GENERIC_XDR, *VAISALA_XDR],
         {"heater_temp": 9.7, "heating_voltage": 24.1, "supply_voltage": 24.4, "ref_voltage": 3.51}),
    Case("signalk XDR.js (no transducer name)", "nmea", "$YXXDR,C,7,C*54",
         [*GENERIC_XDR, xdr("outside_temp", "C", "", "°C", "C")], {"outside_temp": 7.0}),
    Case("WXT530 XDR precipitation example", "nmea",
         "$WIXDR,V,0.02,M,0,Z,30,s,0,R,2.7,M,0,V,0.0,M,1,Z,0,s,1,R,0.0,M,1,R,6.3,M,2,R,0.0,M,3*51",
         [*GENERIC_XDR, *VAISALA_XDR], {"rain_accum": 0.02, "rain_duration": 30.0, "precip_rate": 2.7}),
    # WXT536 guide p.120, checksum recomputed (the printed *75 does not match the printed fields).
    Case("WXT536 XDR PTU example (checksum recomputed)", "nmea",
         "$WIXDR,C,23.3,C,0,C,24.0,C,1,H,50.1,P,0,P,1009.5,H,0*5C", [*GENERIC_XDR, *VAISALA_XDR],
         {"air_temp": 23.3, "internal_temp": 24.0, "rh": 50.1, "pressure": 1009.5}),
    Case("WXT536 XDR PTU example (the printed checksum)", "nmea",
         "$WIXDR,C,23.3,C,0,C,24.0,C,1,H,50.1,P,0,P,1009.5,H,0*75", VAISALA_XDR, refused="checksum"),
    # Pitch and heel before the weather: position 6 is the heel (-1.0 would be "pressure -1000 hPa" by position).
    Case("issue-17 (attitude before the weather quadruplets)", "nmea",
         "$WIXDR,A,-1.0,D,PTCH,A,2.5,D,ROLL,C,12.3,C,TEMP,P,1.0133,B,BARO,H,55.0,P,HUM*3F",
         [*GENERIC_XDR, *ATTITUDE], {"pitch": -1.0, "heel": 2.5, "air_temp": 12.3, "pressure": 1013.3, "rh": 55.0}),
    # ---- other fixed-layout sentences: the unit field named with unit_key
    Case("go-nmea mda_test.go", "nmea",
         "$WIMDA,3.02,I,1.01,B,23.4,C,,,40.2,,12.1,C,19.3,T,20.1,M,13.1,N,1.1,M*62",
         [{"name": "baro_inhg", "key": "MDA.1", "unit_key": "MDA.2", "unit": "hPa"},
          {"name": "baro_bar", "key": "MDA.3", "unit_key": "MDA.4", "unit": "hPa"},
          {"name": "air_temp", "key": "MDA.5", "unit_key": "MDA.6", "unit": "°C"},
          {"name": "wind_speed_kn", "key": "MDA.17", "unit_key": "MDA.18", "unit": "m/s"},
          {"name": "wind_speed_ms", "key": "MDA.19", "unit_key": "MDA.20", "unit": "m/s"}],
         {"baro_inhg": 3.02 * INHG_HPA, "baro_bar": 1010.0, "air_temp": 23.4, "wind_speed_kn": 13.1 * KN,
          "wind_speed_ms": 1.1}),
]
