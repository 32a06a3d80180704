#!/usr/bin/env python3
"""Builds the duty desk's province outlines (agency-client/src/daemon/desk/map/outlines.json).

Source: Natural Earth 1:10m "Admin 1 - States, Provinces" (public domain), as generalized for
QGIS and shipped by Debian in the package qgis-common, file
/usr/share/qgis/resources/data/world_map.gpkg (layer states_provinces; its README says how it
was generalized). Run it where that file is:

    apt-get download qgis-common && dpkg -x qgis-common_*.deb qgis
    python3 tools/boundaries/convert.py qgis/usr/share/qgis/resources/data/world_map.gpkg \
        > agency-client/src/daemon/desk/map/outlines.json

Output: one entry per provincial-level division of the PRC (Hong Kong's districts and Taiwan's
counties merged into one entry each), its Chinese and English name, and its polygons' outer
rings as [lng, lat] pairs rounded to 0.01 degree (about 1 km), points closer than that to the
previous one dropped.
"""

import json
import sqlite3
import struct
import sys

# Natural Earth's English names -> (code, Chinese name). Code: GB/T 2260 province prefix.
NAMES = {
    "Beijing": ("11", "北京"), "Tianjin": ("12", "天津"), "Hebei": ("13", "河北"),
    "Shanxi": ("14", "山西"), "Inner Mongol": ("15", "内蒙古"), "Liaoning": ("21", "辽宁"),
    "Jilin": ("22", "吉林"), "Heilongjiang": ("23", "黑龙江"), "Shanghai": ("31", "上海"),
    "Jiangsu": ("32", "江苏"), "Zhejiang": ("33", "浙江"), "Anhui": ("34", "安徽"),
    "Fujian": ("35", "福建"), "Jiangxi": ("36", "江西"), "Shandong": ("37", "山东"),
    "Henan": ("41", "河南"), "Hubei": ("42", "湖北"), "Hunan": ("43", "湖南"),
    "Guangdong": ("44", "广东"), "Guangxi": ("45", "广西"), "Hainan": ("46", "海南"),
    "Chongqing": ("50", "重庆"), "Sichuan": ("51", "四川"), "Guizhou": ("52", "贵州"),
    "Yunnan": ("53", "云南"), "Xizang": ("54", "西藏"), "Shaanxi": ("61", "陕西"),
    "Gansu": ("62", "甘肃"), "Qinghai": ("63", "青海"), "Ningxia": ("64", "宁夏"),
    "Xinjiang": ("65", "新疆"), "Paracel Islands": ("46", "海南"),
}
WHOLE = {"TWN": ("71", "台湾", "Taiwan"), "HKG": ("81", "香港", "Hong Kong"),
         "MAC": ("82", "澳门", "Macao")}


def wkb_polygons(blob):
    """Outer rings of a GeoPackage geometry (Polygon or MultiPolygon, little or big endian)."""
    flags = blob[3]
    envelope = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[(flags >> 1) & 7]
    data = memoryview(blob)[8 + envelope:]
    rings = []

    def read(off):
        order = "<" if data[off] == 1 else ">"
        (kind,) = struct.unpack_from(order + "I", data, off + 1)
        off += 5
        if kind == 3:
            (n,) = struct.unpack_from(order + "I", data, off)
            off += 4
            for r in range(n):
                (m,) = struct.unpack_from(order + "I", data, off)
                off += 4
                pts = struct.unpack_from(order + "%dd" % (2 * m), data, off)
                off += 16 * m
                if r == 0:
                    rings.append([(pts[2 * i], pts[2 * i + 1]) for i in range(m)])
            return off
        if kind == 6:
            (n,) = struct.unpack_from(order + "I", data, off)
            off += 4
            for _ in range(n):
                off = read(off)
            return off
        raise ValueError("unexpected geometry type %d" % kind)

    read(0)
    return rings


def compact(ring):
    out = []
    for lng, lat in ring:
        p = [round(lng, 2), round(lat, 2)]
        if not out or p != out[-1]:
            out.append(p)
    return out if len(out) >= 4 else None


def main(path):
    db = sqlite3.connect(path)
    rows = db.execute(
        "select name, adm0_a3, geom from states_provinces "
        "where adm0_a3 in ('CHN','TWN','HKG','MAC') order by fid"
    )
    entries = {}
    for name, adm0, geom in rows:
        if adm0 in WHOLE:
            code, zh, en = WHOLE[adm0]
        else:
            code, zh = NAMES[name]
            en = "Hainan" if name == "Paracel Islands" else name
        entry = entries.setdefault(code, {"code": code, "zh": zh, "en": en, "rings": []})
        for ring in wkb_polygons(geom):
            c = compact(ring)
            if c:
                entry["rings"].append(c)
    out = sorted(entries.values(), key=lambda e: e["code"])
    missing = {c for c, _ in NAMES.values()} - {e["code"] for e in out}
    if missing:
        sys.exit("provinces missing from the source: %s" % sorted(missing))
    json.dump({"source": "Natural Earth 1:10m Admin 1 (public domain), via QGIS world_map.gpkg",
               "provinces": out}, sys.stdout, ensure_ascii=False, separators=(",", ":"))


if __name__ == "__main__":
    main(sys.argv[1])
