#!/usr/bin/python3
"""Turns bench/compare.sh's raw results into Markdown tables and PNG plots.

Input (--raw DIR): results.jsonl (one cinch_load JSON line per run, labelled
"group|scenario|server"), machine.txt (key=value lines), rss-*.csv (seconds,rss_bytes).
Output (--out DIR): NAME.md and NAME-{throughput,latency,memory,rss}.png.
"""

import argparse
import csv
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SERVERS = ["cinchd", "memcached", "redis"]
COLORS = {"cinchd": "#1f77b4", "memcached": "#2ca02c", "redis": "#d62728"}
MIB = 1048576.0
KEY_BYTES = 13  # cinch_load's keys: "cl:" + 10 digits


def load(raw):
    runs = []
    with open(os.path.join(raw, "results.jsonl")) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                r = {"label": "?|?|?", "error": "unparsable line: " + line[:100]}
            parts = (r.get("label", "") + "||").split("|")
            r["group"], r["scenario"], r["srv"] = parts[0], parts[1], parts[2]
            runs.append(r)
    machine = {}
    with open(os.path.join(raw, "machine.txt")) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                machine[k] = v
    return runs, machine


def by(runs, group):
    """{scenario: {server: run}} in first-seen scenario order."""
    out = {}
    for r in runs:
        if r["group"] == group:
            out.setdefault(r["scenario"], {})[r["srv"]] = r
    return out


def fmt_int(v):
    return "-" if v is None else f"{v:,.0f}"


def fmt(v, digits=1):
    return "-" if v is None else f"{v:,.{digits}f}"


def lat(r, key, q):
    return (r.get(key) or {}).get(q)


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ok(r):
    return r is not None and not r.get("error") and r.get("exit", 0) == 0


def throughput_section(runs, machine, out, name):
    tp = by(runs, "tp")
    if not tp:
        return "", []
    rows, ratios = [], {s: [] for s in SERVERS}
    for scenario, per in tp.items():
        base = per.get("memcached", {}).get("ops_per_s")
        for s in SERVERS:
            r = per.get(s)
            if r is None:
                continue
            ops = r.get("ops_per_s")
            ratio = ops / base if ops and base else None
            if ratio and ok(r):
                ratios[s].append(ratio)
            rows.append([
                scenario if s == SERVERS[0] else "", s, fmt_int(ops),
                fmt(ratio, 2) + "x" if ratio else "-",
                fmt(lat(r, "lat_us", "p50")), fmt(lat(r, "lat_us", "p99")),
                fmt(lat(r, "lat_us", "p999")),
                fmt(100 * r["hit_ratio"], 1) if "hit_ratio" in r else "-",
                fmt_int(r.get("wrong")),
            ])
    geo = []
    for s in SERVERS:
        if ratios[s]:
            g = math.exp(sum(math.log(x) for x in ratios[s]) / len(ratios[s]))
            geo.append(f"{s} {g:.2f}x")
    text = [
        "## a) Throughput and latency",
        "",
        f"{machine.get('tp_keys')} keys preloaded (every key set once, then read back by the "
        f"mix), {machine.get('connections')} connections from one load-generator thread, "
        f"{machine.get('tp_warmup')} s warm-up then {machine.get('tp_seconds')} s measured, "
        "closed loop (each connection keeps `depth` requests in flight). Values: small = "
        "uniform 32-128 B; mixed = up to 4 KiB (60 % 32-256 B, 30 % 257-1024 B, 10 % 1025-4096 "
        "B). zipf = Zipf(0.99), hot keys scattered over the key space. Memory limit 1024 MiB "
        "(nothing is evicted). Latency in microseconds, all requests, from send to reply. Every "
        "hit is checked byte for byte against the value the key's latest acknowledged version "
        "must hold (`wrong`).",
        "",
        table(["scenario (get:set keys values depth)", "server", "ops/s", "vs memcached",
               "p50 us", "p99 us", "p99.9 us", "hit %", "wrong"], rows),
        "",
        "Geometric mean of ops/s relative to memcached over all scenarios: " + ", ".join(geo)
        + ".",
        "",
        f"![throughput]({name}-throughput.png)",
        f"![p99 latency]({name}-latency.png)",
        "",
    ]
    plot_throughput(tp, out, name)
    return "\n".join(text), []


def plot_throughput(tp, out, name):
    scenarios = list(tp.keys())
    width = 0.27
    for kind, fname, ylabel in (("ops", "throughput", "ops/s"), ("p99", "latency", "p99 latency (us)")):
        fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(scenarios) + 2), 4.8))
        for k, s in enumerate(SERVERS):
            vals = []
            for sc in scenarios:
                r = tp[sc].get(s, {})
                vals.append((r.get("ops_per_s") if kind == "ops" else lat(r, "lat_us", "p99")) or 0)
            xs = [i + (k - 1) * width for i in range(len(scenarios))]
            ax.bar(xs, vals, width, label=s, color=COLORS[s])
        ax.set_xticks(range(len(scenarios)))
        ax.set_xticklabels(scenarios, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        if kind == "p99":
            ax.set_yscale("log")
        ax.set_title("closed loop, one server thread: " + ylabel)
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"{name}-{fname}.png"), dpi=110)
        plt.close(fig)


def memory_section(runs, machine, raw, out, name):
    text = ["## b) Memory", ""]
    fill = by(runs, "fill").get("overhead", {})
    if fill:
        rows = []
        for s in SERVERS:
            r = fill.get(s)
            if r is None:
                continue
            items = r.get("kept", 0) + r.get("missing", 0)
            payload = r.get("live_bytes", 0)
            delta = r.get("rss_end", 0) - r.get("rss_start", 0)
            per = (delta - payload) / items if items else None
            whole = (r.get("rss_end", 0) - payload) / items if items else None
            rows.append([s, fmt_int(items), fmt(payload / MIB), fmt(r.get("rss_start", 0) / MIB),
                         fmt(r.get("rss_end", 0) / MIB), fmt(per), fmt(whole),
                         fmt(r.get("rss_after_flush", 0) / MIB),
                         fmt_int(r.get("missing")), fmt_int(r.get("wrong"))])
        text += [
            "### Overhead per item",
            "",
            f"{machine.get('fill_keys')} items with 13 B keys and 32 B values into a server with "
            "a 1024 MiB limit, all read back. Overhead per item = (RSS after the load - RSS "
            "before it - key and value bytes) / items; RSS is the server process's VmRSS. "
            "What a server allocates at start (cinchd sizes part of its index for the limit) "
            "is in RSS before, so the next column charges the whole process: (RSS after - key "
            "and value bytes) / items, an upper bound. Then flush_all, 2 s of waiting, and RSS "
            "again.",
            "",
            table(["server", "items", "key+value MiB", "RSS before MiB", "RSS after MiB",
                   "overhead B/item", "whole process B/item", "RSS 2 s after flush_all MiB",
                   "missing", "wrong"], rows),
            "",
        ]
    mem = by(runs, "mem")
    if mem:
        rows = []
        for w, per in mem.items():
            r0 = next(iter(per.values()))
            desc = f"{r0.get('before', '?')} -> {r0.get('after', '?')}, " \
                   f"{100 * float(r0.get('delete_fraction', 0)):.0f} % deleted"
            for s in SERVERS:
                r = per.get(s)
                if r is None:
                    continue
                rows.append([w if s == SERVERS[0] else "", desc if s == SERVERS[0] else "", s,
                             fmt(100 * r.get("kept_fraction", 0), 2), fmt_int(r.get("missing")),
                             fmt_int(r.get("wrong")), fmt(r.get("rss_peak_over_limit"), 3),
                             fmt(r.get("rss_end", 0) / r.get("limit_bytes", 1), 3),
                             fmt_int(r.get("not_stored")),
                             fmt(sum(r.get(k, 0) for k in ("seconds_a", "seconds_b",
                                                          "seconds_c")), 1)])
        text += [
            f"### RAMCloud W1-W8 at {machine.get('mem_limit')} MiB",
            "",
            "Rumble et al., FAST'14. Phase A inserts keys with the first sizes until the live "
            "key + value bytes are 80 % of the limit; phase B deletes the given fraction at "
            "random; phase C writes the second sizes (insert below the target, else overwrite "
            "or insert 50/50, then delete random live keys back to the target) until "
            f"{machine.get('write_factor')}x the limit has been written. Then every key ever "
            "written is read: `kept` = live keys present with exactly their latest value; "
            "`missing` = live keys evicted; `wrong` = a wrong value or a deleted key still "
            "readable. Peak RSS is sampled every 50 ms from /proc/PID/status; final is at the "
            "end of the read-back.",
            "",
            table(["workload", "sizes", "server", "kept %", "missing", "wrong",
                   "peak RSS / limit", "final RSS / limit", "sets refused", "write s"], rows),
            "",
            f"![memory]({name}-memory.png)",
            "",
        ]
        plot_memory(mem, out, name)
    shift = by(runs, "shift")
    if shift:
        rows = []
        for sc, per in shift.items():
            r0 = next(iter(per.values()))
            desc = f"{r0.get('before', '?')} -> {r0.get('after', '?')}"
            for s in SERVERS:
                r = per.get(s)
                if r is None:
                    continue
                checked = r.get("kept", 0) + r.get("missing", 0)
                rows.append([sc if s == SERVERS[0] else "", desc if s == SERVERS[0] else "", s,
                             fmt(100 * r.get("retained_over_limit", 0), 1),
                             fmt(r.get("retained_bytes", 0) / MIB),
                             fmt(100 * r.get("kept", 0) / checked if checked else 0, 1),
                             fmt_int(r.get("wrong")), fmt(r.get("rss_peak_over_limit"), 3),
                             fmt_int(r.get("not_stored")),
                             fmt(r.get("seconds_a", 0) + r.get("seconds_c", 0), 1)])
        text += [
            f"### Size shifts at {machine.get('shift_limit')} MiB",
            "",
            "A cache whose values change size (memcached's slab calcification case). Phase A "
            f"writes new keys with the first sizes until {machine.get('shift_factor')}x the "
            "limit has been written; phase C does the same with the second sizes; nothing is "
            "deleted, so the server must evict. Then every key of phase C is read back. "
            "`retained % of limit` = key + value bytes of the phase C keys present and correct, "
            "over the limit: how much of its memory the server gives to the current data (per-"
            "item overhead keeps every server below 100 %). `phase C keys kept` is the share "
            "of all phase C keys, most of which cannot fit.",
            "",
            table(["shift", "sizes", "server", "retained % of limit", "retained MiB",
                   "phase C keys kept %", "wrong", "peak RSS / limit", "sets refused",
                   "write s"], rows),
            "",
        ]
    return "\n".join(text)


def plot_memory(mem, out, name):
    ws = list(mem.keys())
    width = 0.27
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, title in ((axes[0], "kept_fraction", "live set kept (fraction)"),
                           (axes[1], "rss_peak_over_limit", "peak RSS / limit")):
        for k, s in enumerate(SERVERS):
            vals = [(mem[w].get(s) or {}).get(key) or 0 for w in ws]
            ax.bar([i + (k - 1) * width for i in range(len(ws))], vals, width, label=s,
                   color=COLORS[s])
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.set_xticks(range(len(ws)))
        ax.set_xticklabels(ws)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="lower left", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"{name}-memory.png"), dpi=110)
    plt.close(fig)


def evict_section(runs, machine, name):
    ev = by(runs, "evict")
    if not ev:
        return ""
    rows = []
    for rate, per in ev.items():
        for s in SERVERS:
            r = per.get(s)
            if r is None:
                continue
            rows.append([fmt_int(float(rate)) if s == SERVERS[0] else "", s,
                         fmt_int(r.get("ops_per_s")), fmt(lat(r, "lat_us", "p50")),
                         fmt(lat(r, "lat_us", "p99")), fmt(lat(r, "lat_us", "p999")),
                         fmt(lat(r, "lat_us", "max")), fmt(lat(r, "set_us", "p99")),
                         fmt(100 * r.get("hit_ratio", 0), 1), fmt_int(r.get("not_stored")),
                         fmt_int(r.get("late")), fmt(r.get("rss_peak_over_limit"), 3),
                         fmt_int(r.get("wrong"))])
    return "\n".join([
        "## c) Latency while evicting",
        "",
        f"{machine.get('ev_keys')} keys with 32-128 B values (about 1.4x what fits) are set into "
        f"a server with a {machine.get('ev_limit')} MiB limit, so the cache is full and evicting;"
        " then an open loop sends 90 % sets / 10 % gets at a fixed rate (Poisson arrivals) over "
        f"{machine.get('connections')} connections for {machine.get('ev_seconds')} s after 1 s of "
        "warm-up. Latency is measured from each request's scheduled send time, so a stall is "
        "charged to every request it delays (no coordinated omission); `late` counts requests "
        "due that the generator could not send before the end.",
        "",
        table(["rate/s", "server", "achieved ops/s", "p50 us", "p99 us", "p99.9 us", "max us",
               "set p99 us", "hit %", "sets refused", "late", "peak RSS / limit", "wrong"], rows),
        "",
    ])


def read_csv(path):
    xs, ys = [], []
    try:
        with open(path) as f:
            for row in csv.DictReader(f):
                xs.append(float(row["seconds"]))
                ys.append(int(row["rss_bytes"]))
    except OSError:
        pass
    return xs, ys


def rss_section(runs, raw, out, name):
    panels = []
    for group, prefix in (("mem", ""), ("evict", "evict-")):
        for scenario, per in by(runs, group).items():
            panels.append((("evict " + scenario + "/s") if group == "evict" else scenario,
                           prefix + scenario, per))
    if not panels:
        return ""
    cols = 4 if len(panels) > 4 else len(panels)
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, stem, per) in zip(axes.flat, panels):
        for s in SERVERS:
            r = per.get(s)
            xs, ys = read_csv(os.path.join(raw, f"rss-{stem}-{s}.csv"))
            if not xs or r is None or not r.get("limit_bytes"):
                continue
            ax.plot(xs, [y / r["limit_bytes"] for y in ys], label=s, color=COLORS[s], lw=1.2)
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds", fontsize=8)
        ax.set_ylabel("RSS / limit", fontsize=8)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"{name}-rss.png"), dpi=100)
    plt.close(fig)
    return "\n".join([
        "## d) RSS over time",
        "",
        "Server VmRSS / limit, sampled every 50 ms, for each memory workload (the dashed line "
        "is the limit). The RAMCloud runs end with the read-back of every key.",
        "",
        f"![RSS over time]({name}-rss.png)",
        "",
    ])


def problems_section(runs):
    bad = [r for r in runs if not ok(r) or r.get("wrong")]
    if not bad:
        return "## Problems\n\nNone: every run completed and no value read back was wrong.\n"
    lines = ["## Problems", ""]
    for r in bad:
        lines.append(f"- `{r.get('label')}`: exit {r.get('exit')}, wrong {r.get('wrong', '-')}, "
                     f"error: {r.get('error') or '-'}")
    return "\n".join(lines) + "\n"


def header(machine, name):
    quick = machine.get("quick") == "1"
    pinned = machine.get("pinned") == "1"
    cmd = "bench/compare.sh --quick" if quick else "bench/compare.sh"
    return "\n".join([
        f"# cinchd vs memcached vs Redis{' (quick run)' if quick else ''}",
        "",
        f"Produced by `{cmd}` on {machine.get('date')} in {machine.get('seconds', '?')} s "
        f"(commit {machine.get('git')}). Every figure below is measured in this run.",
        "",
        table(["machine", ""], [
            ["cores (nproc)", machine.get("nproc")],
            ["CPU", machine.get("cpu")],
            ["memory", machine.get("memory")],
            ["Debian", machine.get("debian")],
            ["kernel", machine.get("kernel")],
            ["compiler", machine.get("gxx")],
            ["cinchd", machine.get("cinchd")],
            ["memcached", machine.get("memcached")],
            ["Redis", machine.get("redis")],
            ["load average at start / end",
             f"{machine.get('loadavg_start')} / {machine.get('loadavg_end')}"],
        ]),
        "",
        "Setup, the same for every server: one worker thread (`cinchd -t 1`, `memcached -t 1`; "
        "Redis executes commands on one thread), the same memory limit, 127.0.0.1 on a free "
        "port, a fresh server process for every run. "
        + "The load generator (`cinch_load`, one thread) drives all its connections through "
        f"one {'io_uring' if machine.get('generator_io') == 'uring' else machine.get('generator_io')} "
        "loop (`--io`): with io_uring it makes one system "
        "call per round of replies, so at depth 1 it is not the bottleneck (an epoll generator "
        "costs about what the server costs per request and caps every server alike). "
        + ("The server is pinned to core 0 and the load generator to "
           "core 1: on 2 cores this is the fairest split, and it means each server gets exactly "
           "one core for everything it runs (workers, cinch's cleaner, memcached's LRU "
           "maintainer, Redis's background threads). " if pinned else
           "Nothing is pinned (fewer than 2 cores or no taskset). ")
        + "Servers alternate within every scenario, the first one rotating, so drift over the "
        "run cancels. A load average well above 1 at start means other work shared the machine "
        "and timings are noisy; memory and correctness figures do not depend on it.",
        "",
        "The limits do not mean the same thing: `cinchd -m` bounds the whole process's resident "
        "memory; `memcached -m` bounds item memory only (slab pages), so its hash table, "
        "connection buffers and the process itself come on top; Redis's `maxmemory` bounds "
        "the allocator's count of used memory, so allocator fragmentation (RSS above "
        "used_memory) comes on top. The tables report RSS / limit for all three as measured.",
        "",
    ])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--raw", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--name", default="compare")
    a = p.parse_args()
    runs, machine = load(a.raw)
    # What the generator's loop was, as each run reports it ("uring", or "epoll" if refused).
    machine["generator_io"] = ", ".join(sorted({r["io"] for r in runs if r.get("io")})) or "?"
    parts = [header(machine, a.name)]
    tp_text, _ = throughput_section(runs, machine, a.out, a.name)
    parts.append(tp_text)
    parts.append(memory_section(runs, machine, a.raw, a.out, a.name))
    parts.append(evict_section(runs, machine, a.name))
    parts.append(rss_section(runs, a.raw, a.out, a.name))
    parts.append(problems_section(runs))
    with open(os.path.join(a.out, a.name + ".md"), "w") as f:
        f.write("\n".join(x for x in parts if x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
