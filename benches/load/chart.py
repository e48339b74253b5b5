#!/usr/bin/env python3
"""Draws a load run's JSON (benches/load/run.sh) as one SVG: req/s and p99 per system for a 4 KiB
file (unlimited and counted links), 1 GiB throughput, and RSS over time under the slow readers.

usage: chart.py RESULT.json OUT.svg    (plain SVG, no dependencies)
"""
import json
import sys
from html import escape

def short(v):
    """A bar's label: 36.5k, 875, 8.6."""
    if v >= 10000:
        return f"{v / 1000:.1f}k"
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


COLOURS = {"unlimited": "#0b57d0", "counted": "#e8710a"}
LINES = ["#0b57d0", "#e8710a", "#188038", "#a142f4", "#d93025", "#007b83", "#5f6368", "#b06000"]
PANEL_W, PANEL_H, PAD = 560, 300, 50


def bars(x0, y0, title, unit, groups, series):
    """Grouped bars: groups (labels) × series ({name: {label: value}})."""
    out = [f'<text x="{x0 + PANEL_W / 2}" y="{y0 + 18}" class="title">{escape(title)}</text>']
    values = [v for s in series.values() for v in s.values() if v is not None]
    top = max(values + [1]) * 1.15
    plot_h = PANEL_H - PAD - 40
    base = y0 + 30 + plot_h
    out.append(f'<line x1="{x0 + PAD}" y1="{base}" x2="{x0 + PANEL_W - 10}" y2="{base}" class="axis"/>')
    slot = (PANEL_W - PAD - 10) / max(len(groups), 1)
    width = slot * 0.8 / max(len(series), 1)
    for gi, g in enumerate(groups):
        gx = x0 + PAD + gi * slot + slot * 0.1
        for si, (name, s) in enumerate(series.items()):
            v = s.get(g)
            if v is None:
                continue
            h = plot_h * v / top
            x = gx + si * width
            colour = COLOURS.get(name, LINES[si % len(LINES)])
            out.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{width - 2:.1f}" height="{h:.1f}" fill="{colour}"><title>{escape(g)} {escape(name)}: {v:g} {unit}</title></rect>')
            out.append(f'<text x="{x + width / 2 - 1:.1f}" y="{base - h - 3:.1f}" class="value">{short(v)}</text>')
        out.append(f'<text x="{gx + slot * 0.4:.1f}" y="{base + 14}" class="label">{escape(g.replace("linkgate_", "lg_"))}</text>')
    out.append(f'<text x="{x0 + 12}" y="{y0 + 30 + plot_h / 2}" class="unit" transform="rotate(-90 {x0 + 12} {y0 + 30 + plot_h / 2})">{escape(unit)}</text>')
    for li, name in enumerate(series):
        colour = COLOURS.get(name, LINES[li % len(LINES)])
        out.append(f'<rect x="{x0 + PAD + li * 110}" y="{y0 + PANEL_H - 18}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x0 + PAD + 14 + li * 110}" y="{y0 + PANEL_H - 9}" class="legend">{escape(name)}</text>')
    return out


def lines(x0, y0, title, unit, series):
    out = [f'<text x="{x0 + PANEL_W / 2}" y="{y0 + 18}" class="title">{escape(title)}</text>']
    points = [p for s in series.values() for p in s]
    if not points:
        return out
    tmax = max(p[0] for p in points) or 1
    vmax = max(p[1] for p in points) * 1.15 or 1
    plot_w, plot_h = PANEL_W - PAD - 10, PANEL_H - PAD - 60
    base = y0 + 30 + plot_h
    out.append(f'<line x1="{x0 + PAD}" y1="{base}" x2="{x0 + PANEL_W - 10}" y2="{base}" class="axis"/>')
    out.append(f'<line x1="{x0 + PAD}" y1="{y0 + 30}" x2="{x0 + PAD}" y2="{base}" class="axis"/>')
    for frac in (0.5, 1.0):
        y = base - plot_h * frac / 1.15
        out.append(f'<text x="{x0 + PAD - 4}" y="{y:.1f}" class="tick">{vmax * frac / 1.15:.0f}</text>')
    out.append(f'<text x="{x0 + PAD + plot_w}" y="{base + 14}" class="tick">{tmax:g} s</text>')
    for i, (name, s) in enumerate(series.items()):
        if not s:
            continue
        colour = LINES[i % len(LINES)]
        path = " ".join(f"{x0 + PAD + plot_w * t / tmax:.1f},{base - plot_h * v / vmax:.1f}" for t, v in s)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"><title>{escape(name)}</title></polyline>')
        lx, ly = x0 + PAD + (i % 4) * 125, y0 + PANEL_H - 26 + (i // 4) * 13
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly}" class="legend">{escape(name)}</text>')
    out.append(f'<text x="{x0 + 12}" y="{y0 + 30 + plot_h / 2}" class="unit" transform="rotate(-90 {x0 + 12} {y0 + 30 + plot_h / 2})">{escape(unit)}</text>')
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    r = json.load(open(src))
    targets = [t for t in ["origin", "secure_link", "passthrough", "linkgate_embedded", "linkgate_redis"] if t in r["rps_4k_unlimited"]]
    p99 = r.get("p99_ms_4k", {})
    parts = []
    parts += bars(0, 40, "4 KiB requests per second", "req/s", targets,
                  {"unlimited": r["rps_4k_unlimited"], "counted": r["rps_4k_counted"]})
    parts += bars(PANEL_W, 40, "4 KiB p99 latency", "ms", targets,
                  {"unlimited": p99.get("unlimited", {}), "counted": p99.get("counted", {})})
    thr_targets = [t for t in targets + ["linkgate_dir"] if t in r["mb_per_s_1g"]]
    parts += bars(0, 40 + PANEL_H, "1 GiB download throughput", "MB/s", thr_targets, {"1 GiB": r["mb_per_s_1g"]})
    parts += lines(PANEL_W, 40 + PANEL_H, f"RSS under {r.get('slow_readers', 1000)} slow readers", "MiB",
                   {k: v for k, v in r.get("rss_mib_over_time", {}).items() if v})
    width, height = PANEL_W * 2, 40 + PANEL_H * 2
    head = f"Load benchmark {r['when']}: {r['cpus']} CPUs, {r['connections']} connections, {r['duration_s']} s per run, THREADS={r['threads']}"
    if r.get("rounds", 1) > 1:
        head += f", best of {r['rounds']} interleaved rounds"
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">',
           "<style>.title{font-size:14px;font-weight:bold;text-anchor:middle}.label,.value{font-size:10px;text-anchor:middle}"
           ".legend,.tick{font-size:11px}.tick{text-anchor:end}.unit{font-size:11px;text-anchor:middle}.axis{stroke:#333}</style>",
           f'<rect width="{width}" height="{height}" fill="#fff"/>',
           f'<text x="{width / 2}" y="22" class="title">{escape(head)}</text>', *parts, "</svg>"]
    open(dst, "w").write("\n".join(svg))
    print(f"written: {dst}")


if __name__ == "__main__":
    main()
