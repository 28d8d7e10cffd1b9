#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Collect the guest output of dmabuf-bench runs into results.tsv and turn it
into table.md and bench.png.

    bench-report.py DIR TOPO=OUTPUT...

DIR/meta.tsv, if there, describes the run.  Every ratio is between rows of
the same run and topology.
"""
import os
import subprocess
import sys
from collections import defaultdict

METHODS = [
    ("ranges", "range op"),
    ("ranges-4k", "range op, [4K, size)"),
    ("sgt64k", "sg shim, 64 KiB seg"),
    ("sgt4g", "sg shim, 4 GiB seg"),
    ("pages", "struct pages"),
    ("umem", "MR, 4K|2M|1G (irdma)"),
    ("umem-sgt", "MR, 4K|2M|1G, 6.12's sg_table path"),
    ("umem-bnxt", "MR, 4K to 1G (bnxt_re, mlx5 now)"),
    ("umem4k", "MR, 4K only (6.12's mlx5 dma-buf)"),
    ("attach", "attach to a static range exporter"),
    ("type1-bar", "type1 MAP_DMA of the BAR mmap"),
    ("mapfile-bar", "MAP_FILE of a BAR dma-buf"),
    ("mapfile-memfd", "MAP_FILE of a memfd"),
    ("map-memfd", "IOAS_MAP of the memfd's mmap"),
]
LABEL = dict(METHODS)


def size_name(b):
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if b >= 1 << shift and b % (1 << shift) == 0:
            return "%d%s" % (b >> shift, unit)
    return str(b)


def ns_name(ns):
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            return "%.3g %s" % (ns / div, unit)
    return "%d ns" % ns


def bytes_name(b):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if b >= 1 << shift:
            return "%.3g %s" % (b / (1 << shift), unit)
    return "%d B" % b


def ratio(a, b):
    if not (a and b):
        return "-"
    return "{:,.0f}x".format(a / b) if a / b >= 100 else "%.3gx" % (a / b)


def collect(d, runs):
    """DIR/results.tsv: the run's meta lines, then each topology's rows."""
    path = os.path.join(d, "results.tsv")
    meta = os.path.join(d, "meta.tsv")
    with open(path, "w") as out:
        if os.path.exists(meta):
            out.write(open(meta).read())
        for run in runs:
            topo, output = run.split("=", 1)
            for line in open(output):
                if line.split("\t", 1)[0] in ("row", "areas", "pages-setup", "info"):
                    out.write("%s\t%s" % (topo, line))
    return path


AREAS = (("revoke", "decode off"), ("restore", "decode on"), ("unmap", "UNMAP of all"))
AREAS_HOW = (("mapfile", "MAP_FILE each"), ("copy", "IOAS_COPYs of one"))


def load(path):
    meta, rows, setup, info = {}, defaultdict(dict), defaultdict(dict), defaultdict(dict)
    areas = defaultdict(dict)
    with open(path) as f:
        for line in f:
            w = line.rstrip("\n").split("\t")
            if w[0] == "meta":
                meta[w[1]] = w[2]
            elif w[1] == "row":
                topo, method, size = w[0], w[2], int(w[3])
                reps, med, p25, p75, ent, byt, iob = map(int, w[4:11])
                rows[topo][(method, size)] = dict(reps=reps, median=med, p25=p25, p75=p75,
                                                  entries=ent, bytes=byt, iommu=iob)
            elif w[1] == "areas":
                areas[w[0]][(w[2], int(w[3]))] = dict(
                    zip((k for k, _ in AREAS), map(int, w[4:7])))
            elif w[1] == "pages-setup":
                setup[w[0]][int(w[2])] = dict(ns=int(w[3]), memmap=int(w[4]))
            elif w[1] == "info":
                info[w[0]][w[2]] = w[3]
    return meta, rows, setup, info, areas


def timing(r):
    if not r:
        return "-"
    if r["reps"] == 1:
        return "%s (1 run)" % ns_name(r["median"])
    spread = 100.0 * (r["p75"] - r["p25"]) / r["median"] if r["median"] else 0
    return "%s ±%.0f%%" % (ns_name(r["median"]), spread / 2)


def areas_table(areas):
    ns = sorted({n for (_, n) in areas})
    if not ns:
        return []
    out = ["", "N one-page areas of a BAR dma-buf in the IOAS (one MAP_FILE each, or IOAS_COPYs "
           "of one area: one attachment holding every record), time per area of decode off (the "
           "dma-buf core unmaps every area) and decode on (it maps them again), each the "
           "fastest of 3 off/on cycles, and of one UNMAP of them all:", "",
           "| N | " + " | ".join("%s, %s" % (p, h) for h in (h for _, h in AREAS_HOW)
                                 for p in (p for _, p in AREAS)) + " |",
           "|---|" + "---|" * (len(AREAS) * len(AREAS_HOW))]
    for n in ns:
        cells = []
        for how, _ in AREAS_HOW:
            r = areas.get((how, n))
            cells += [ns_name(r[k] / n) if r else "-" for k, _ in AREAS]
        out.append("| {:,} | {} |".format(n, " | ".join(cells)))
    return out


def topo_tables(topo, rows, setup, info, areas):
    sizes = sorted({s for (m, s) in rows if m != "ranges-list"})
    get = lambda m, s: rows.get((m, s))
    out = ["### `%s`" % topo, ""]
    notes = []
    if "pages-stopped" in info:
        notes.append("struct pages stopped before %s: the time budget "
                     "(`BENCH_PAGES_S`) would be exceeded" % size_name(int(info["pages-stopped"])))
    if "iommu-large-pages" in info:
        notes.append("vIOMMU large pages (VT-d SLLPS): %s" % info["iommu-large-pages"])
    if "clocksource" in info:
        notes.append("guest clocksource: %s" % info["clocksource"])
    out += ["- " + n for n in notes] + [""]

    maps = [m for m in ("ranges", "ranges-4k", "sgt64k", "sgt4g", "pages")
            if any(k[0] == m for k in rows)]
    out += ["Map + unmap for edu, median ± half the interquartile range:", "",
            "| slice | " + " | ".join(LABEL[m] for m in maps) +
            " | pages ÷ range | shim 64K ÷ range |",
            "|---|" + "---|" * (len(maps) + 2)]
    for s in sizes:
        r, a, p = get("ranges", s), get("sgt64k", s), get("pages", s)
        out.append("| %s | %s | %s | %s |" % (
            size_name(s), " | ".join(timing(get(m, s)) for m in maps),
            ratio(p and p["median"], r and r["median"]),
            ratio(a and a["median"], r and r["median"])))

    held = [m for m in ("ranges", "sgt64k", "sgt4g", "pages") if m in maps]
    iommu = [m for m in ("ranges", "ranges-4k", "pages") if m in maps] \
        if any(v["iommu"] for v in rows.values()) else []
    out += ["", "Memory a mapping holds (entries)" +
            (", and the IOMMU page tables it adds (tables left by earlier mappings of the "
             "same IOVAs are reused, not counted)" if iommu else "") + ":", "",
            "| slice | " + " | ".join(LABEL[m] for m in held) + " | memmap for the slice |" +
            "".join(" IOMMU PT, %s |" % LABEL[m] for m in iommu),
            "|---|" + "---|" * (len(held) + 1 + len(iommu))]
    for s in sizes:
        cells = []
        for m in held:
            r = get(m, s)
            cells.append("%s (%d)" % (bytes_name(r["bytes"]), r["entries"]) if r else "-")
        st = setup.get(s)
        cells.append("%s (%.2f%%)" % (bytes_name(st["memmap"]), 100.0 * st["memmap"] / s)
                     if st else "-")
        for m in iommu:
            r = get(m, s)
            cells.append(bytes_name(r["iommu"]) if r else "-")
        out.append("| %s | %s |" % (size_name(s), " | ".join(cells)))

    out += ["", "RDMA MR import (get, map, best block size, walk every block, release), by "
            "driver page-size bitmap; the sg_table column is the same registration, bitmap and "
            "exporter with the umem over an sg_table as 6.12's umem made it (4 GiB segments, "
            "built by the core from the ranges), so its ratio is the list's own effect, and "
            "the 4K-only ratio is the bitmap's:", "",
            "| slice | 4K\\|2M\\|1G (irdma) | blocks | same, 6.12's sg_table | sg ÷ ranges "
            "| 4K to 1G (bnxt_re, mlx5 now) | blocks | 4K only (6.12's mlx5 dma-buf) | blocks | 4K ÷ irdma |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for s in sizes:
        u, g, b, k = (get(m, s) for m in ("umem", "umem-sgt", "umem-bnxt", "umem4k"))
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            size_name(s), timing(u), u["entries"] if u else "-", timing(g),
            ratio(g and g["median"], u and u["median"]), timing(b),
            b["entries"] if b else "-", timing(k), k["entries"] if k else "-",
            ratio(k and k["median"], u and u["median"])))

    if any(k[0] == "attach" for k in rows):
        out += ["", "A dynamic importer attaching to a static exporter of the slice with range ops "
                "only: what the attachment caches, against the sg_table (64 KiB entries) that "
                "6.12's core built at attach for it (the sg shim's map above):", "",
                "| slice | attach + detach | cached now (entries) | 6.12's cached sg_table (entries) | ratio |",
                "|---|---|---|---|---|"]
        for s in sizes:
            t, a = get("attach", s), get("sgt64k", s)
            out.append("| %s | %s | %s | %s | %s |" % (
                size_name(s), timing(t),
                "%s (%d)" % (bytes_name(t["bytes"]), t["entries"]) if t else "-",
                "%s (%d)" % (bytes_name(a["bytes"]), a["entries"]) if a else "-",
                ratio(a and a["bytes"], t and t["bytes"])))

    if any(k[0] == "mapfile-bar" for k in rows):
        out += ["", "How a VMM maps the slice for a guest's P2P DMA (map + unmap of every byte, "
                "timed in userspace; ivshmem's IOMMU domain stands in for the guest's), and the "
                "IOMMU page tables one mapping adds:", "",
                "| slice | type1 MAP_DMA of the BAR mmap | type1 per 4 KiB page | MAP_FILE of a "
                "BAR dma-buf | type1 ÷ MAP_FILE | IOMMU PT, type1 | IOMMU PT, MAP_FILE |",
                "|---|---|---|---|---|---|---|"]
        for s in sizes:
            t, f = get("type1-bar", s), get("mapfile-bar", s)
            out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                size_name(s), timing(t), ns_name(t["median"] * 4096 / s) if t else "-",
                timing(f), ratio(t and t["median"], f and f["median"]),
                bytes_name(t["iommu"]) if t else "-", bytes_name(f["iommu"]) if f else "-"))
        out += ["", "Guest RAM in a populated memfd (map + unmap of every byte):", "",
                "| size | MAP_FILE of the memfd | IOAS_MAP of its mmap | IOAS_MAP ÷ MAP_FILE |",
                "|---|---|---|---|"]
        for s in sizes:
            f, m = get("mapfile-memfd", s), get("map-memfd", s)
            if f or m:
                out.append("| %s | %s | %s | %s |" % (
                    size_name(s), timing(f), timing(m), ratio(m and m["median"], f and f["median"])))

    out += areas_table(areas)

    if setup:
        out += ["", "Struct pages, once per BAR part (cumulative over the sizes above):", "",
                "| BAR part | create pages | memmap |", "|---|---|---|"]
        for s in sorted(setup):
            out.append("| %s | %s | %s |" % (size_name(s), ns_name(setup[s]["ns"]),
                                            bytes_name(setup[s]["memmap"])))
    return out


def targets(rows, setup, info, areas):
    out = ["### Targets", ""]
    sw = rows.get("switch", {})

    def med(t, m, s):
        r = rows.get(t, {}).get((m, s))
        return r["median"] if r else None

    lo, hi = 2 << 20, 64 << 30
    if med("switch", "ranges", lo) and med("switch", "ranges", hi):
        x = med("switch", "ranges", hi) / med("switch", "ranges", lo)
        out.append("- range op flat on `switch`: 64G takes %.2fx the time of 2M (target ≤ 2x): %s"
                   % (x, "met" if x <= 2 else "MISSED"))
    lists = sorted({(r["entries"], r["bytes"]) for (m, _), r in sw.items()
                    if m in ("ranges", "ranges-list")})
    for n, b in lists:
        out.append("- range op memory: a %d-range list takes %d B from the allocator "
                   "(struct dma_buf_ranges: 24 B header + 16 B per range; target ≤ 32 B per "
                   "range + a fixed header): %s" % (n, b, "met" if b <= 64 + 32 * n else "MISSED"))
    g = 1 << 30
    for t in rows:
        r, p, a = med(t, "ranges", g), med(t, "pages", g), med(t, "sgt64k", g)
        if r and p:
            out.append("- `%s`, 1 GiB: range op %s faster than struct pages (target ≥ 100x): %s"
                       % (t, ratio(p, r), "met" if p / r >= 100 else "MISSED"))
        if r and a:
            out.append("- `%s`, 1 GiB: range op %s faster than the 64 KiB shim (target ≥ 10x): %s"
                       % (t, ratio(a, r), "met" if a / r >= 10 else "MISSED"))
    for t in rows:
        one = [r for (m, _), r in rows[t].items() if m == "ranges"]
        lst = [r for (m, _), r in rows[t].items() if m == "ranges-list"]
        if one and lst:
            out.append("- `%s`: map + unmap of a %d-range list takes %s, %s the time of one range "
                       "(%s per extra range)" % (
                           t, lst[0]["entries"], ns_name(lst[0]["median"]),
                           ratio(lst[0]["median"], one[0]["median"]),
                           ns_name((lst[0]["median"] - one[0]["median"]) /
                                   (lst[0]["entries"] - 1))))
    for t, st in setup.items():
        s = max(st)
        out.append("- `%s`: struct pages for %s of BAR took %s of memmap (%.2f%% of the BAR) "
                   "and %s to create" % (t, size_name(s), bytes_name(st[s]["memmap"]),
                                         100.0 * st[s]["memmap"] / s, ns_name(st[s]["ns"])))
    io = rows.get("iommu", {})
    for m, what in (("ranges", "range op"),
                    ("ranges-4k", "range op on [4K, size) slices (4 KiB IOMMU pages only)")):
        ss = sorted(s for (mm, s) in io if mm == m)
        if len(ss) < 2:
            continue
        a, b = io[(m, ss[0])], io[(m, ss[-1])]
        out.append("- `iommu`: %s %s → %s from %s to %s (%.3gx for %dx the bytes); new IOMMU "
                   "page tables %s → %s" % (
                       what, ns_name(a["median"]), ns_name(b["median"]), size_name(ss[0]),
                       size_name(ss[-1]), b["median"] / a["median"], ss[-1] // ss[0],
                       bytes_name(a["iommu"]), bytes_name(b["iommu"])))
    if io.get(("mapfile-bar", hi)):
        f, t = io[("mapfile-bar", hi)]["median"], io.get(("type1-bar", hi), {}).get("median")
        out.append("- `iommu`, 64 GiB: MAP_FILE of a BAR dma-buf %s faster than type1 MAP_DMA of "
                   "the BAR mmap (target ≥ 100x): %s. type1 looks up every 4 KiB PFN of the "
                   "mmap; MAP_FILE takes the exporter's physical ranges" % (ratio(t, f), "met" if t and t / f >= 100
                                                    else "MISSED"))
    if io.get(("mapfile-bar", lo)) and io.get(("mapfile-bar", hi)):
        x = io[("mapfile-bar", hi)]["median"] / io[("mapfile-bar", lo)]["median"]
        out.append("- `iommu`: MAP_FILE of a BAR dma-buf flat: 64G takes %.2fx the time of 2M "
                   "(target ≤ 2x): %s" % (x, "met" if x <= 2 else "MISSED"))
    mem = sorted(s for (m, s) in io if m == "mapfile-memfd" and ("map-memfd", s) in io)
    if mem:
        s = mem[-1]
        out.append("- `iommu`, %s memfd: IOAS_MAP of its mmap takes %s the time of MAP_FILE "
                   "(parity expected)" % (size_name(s), ratio(io[("map-memfd", s)]["median"],
                                                               io[("mapfile-memfd", s)]["median"])))
    for how, h in AREAS_HOW:
        ar = areas.get("iommu", {})
        a, b = ar.get((how, 100)), ar.get((how, 10000))
        if a and b:
            x = [(b[k] / 10000) / (a[k] / 100) for k, _ in AREAS]
            out.append("- `iommu`: N dma-buf areas (%s): time per area at 10,000 ÷ at 100: %s "
                       "(target: roughly flat, ≤ 2x): %s" % (
                           h, ", ".join("%s %.2fx" % (p, v) for (_, p), v in zip(AREAS, x)),
                           "met" if max(x) <= 2 else "MISSED"))
    if "iommu-large-pages" in info.get("iommu", {}):
        out.append("- `iommu`: the vIOMMU offers large pages: %s" % info["iommu"]["iommu-large-pages"])
    return out


def plot(d, rows, setup):
    pdir = os.path.join(d, "plot")
    os.makedirs(pdir, exist_ok=True)
    topos = sorted(rows, key=lambda t: t != "switch")
    series = {}
    for t in topos:
        for m, _ in METHODS:
            pts = sorted((s, r) for (mm, s), r in rows[t].items() if mm == m)
            if not pts:
                continue
            name = os.path.join(pdir, "%s-%s.dat" % (t, m))
            with open(name, "w") as f:
                for s, r in pts:
                    f.write("%g %d %d %d %d %d\n" % (s / 2**20, r["median"], r["p25"],
                                                     r["p75"], r["bytes"], r["iommu"]))
            series[(t, m)] = name
        if setup.get(t):
            name = os.path.join(pdir, "%s-memmap.dat" % t)
            with open(name, "w") as f:
                for s in sorted(setup[t]):
                    f.write("%g %d\n" % (s / 2**20, setup[t][s]["memmap"]))
            series[(t, "memmap")] = name
    iommu_topos = {t for t in topos if any(r["iommu"] for r in rows[t].values())}
    xt = 'set xtics ("2M" 2, "16M" 16, "128M" 128, "1G" 1024, "8G" 8192, "64G" 65536)'
    gp = ['set terminal pngcairo size 1400,1000 font ",10"',
          'set output "%s"' % os.path.join(d, "bench.png"),
          "set multiplot layout 2,%d" % len(topos), "set logscale xy", xt, "set grid",
          'set key top left', 'set xlabel "slice of the BAR"']
    for what, col, ylabel in (("time", 2, "map + unmap (or MR import), ns"),
                              ("memory", 5, "bytes held per mapping")):
        for t in topos:
            gp.append('set title "%s: %s"' % (t, what))
            gp.append('set ylabel "%s"' % ylabel)
            plots = []
            for i, (m, label) in enumerate(METHODS):
                if (t, m) not in series:
                    continue
                if what == "time" or m in ("ranges", "sgt64k", "sgt4g", "pages"):
                    plots.append('"%s" using 1:($%d > 0 ? $%d : 1/0) with linespoints lt %d '
                                 'title "%s"' % (series[(t, m)], col, col, i + 1, label))
                if what == "memory" and m == "ranges-4k" and t in iommu_topos:
                    plots.append('"%s" using 1:($6 > 0 ? $6 : 1/0) with linespoints lt %d dt 3 '
                                 'title "IOMMU page tables, %s"' % (series[(t, m)], i + 1, label))
            if what == "memory" and (t, "memmap") in series:
                plots.append('"%s" using 1:2 with linespoints lt 8 dt 2 '
                             'title "memmap for struct pages"' % series[(t, "memmap")])
            gp.append("plot " + ", ".join(plots))
    gp.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(gp), text=True, check=True)


def main():
    d = sys.argv[1]
    meta, rows, setup, info, areas = load(collect(d, sys.argv[2:]))
    out = ["## Benchmark: giving an importer a BAR slice", "",
           "%s; host: %s; QEMU %s; guest kernel %s." % (
               meta.get("date"), meta.get("host"), meta.get("qemu"), meta.get("kernel")),
           "Command in the guest: `%s`.  Times are of an emulated (TCG) guest: compare "
           "rows of one run, not absolute values with hardware." % meta.get("command"), ""]
    out += targets(rows, setup, info, areas) + [""]
    for t in sorted(rows, key=lambda t: t != "switch"):
        out += topo_tables(t, rows[t], setup.get(t, {}), info.get(t, {}),
                           areas.get(t, {})) + [""]
    with open(os.path.join(d, "table.md"), "w") as f:
        f.write("\n".join(out))
    plot(d, rows, setup)
    print("\n".join(out))
    print("bench: %s, %s" % (os.path.join(d, "table.md"), os.path.join(d, "bench.png")))


if __name__ == "__main__":
    main()
