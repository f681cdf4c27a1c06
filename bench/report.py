#!/usr/bin/python3
# Turns the JSON lines of one bench/run into report.md with tables and SVG
# plots (gnuplot). Standard library only.
#
#   bench/report.py RESULTS_DIR
#
# RESULTS_DIR holds machine.json (written by bench/run) and, per benchmark
# that ran, <name>.json (its last JSON line), <name>.cmd (the exact command)
# and <name>.log (everything it printed).

import json
import os
import subprocess
import sys

out = sys.argv[1]


def load(name):
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        text = f.read().strip()
    return json.loads(text) if text else None


def command_of(name):
    path = os.path.join(out, name + ".cmd")
    return open(path).read().strip() if os.path.exists(path) else "(not run)"


machine = json.load(open(os.path.join(out, "machine.json")))
machine_line = "%s cores, %.1f GiB memory (%s; load average %s at the start)" % (
    machine["cores"], machine["mem_gib"], machine["cpu"], machine["load_start"])

md = []
plots = []  # (svg, gnuplot script)
verdicts = []  # (target, measured, met or None)


def fmt(v, digits=0):
    if v is None:
        return "–"
    if isinstance(v, float) or isinstance(v, int):
        if digits == 0:
            return "{:,.0f}".format(v)
        return ("{:,.%df}" % digits).format(v)
    return str(v)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def caption(name):
    md.append("")
    md.append("*Machine: %s. Command: `%s`.*" % (machine_line, command_of(name)))
    md.append("")


def table(header, rows):
    md.append("| " + " | ".join(header) + " |")
    md.append("| " + " | ".join("---" for _ in header) + " |")
    for r in rows:
        md.append("| " + " | ".join(r) + " |")


def plot(svg, title, xlabel, ylabel, series, benches, logx=True, logy=False, style="linespoints"):
    """series: list of (label, [(x, y), ...])"""
    series = [(label, [(x, y) for x, y in pts if x is not None and y is not None]) for label, pts in series]
    series = [(label, pts) for label, pts in series if pts]
    if not series:
        return
    dat = svg.replace(".svg", ".dat")
    with open(os.path.join(out, dat), "w") as f:
        for label, pts in series:
            f.write("# %s\n" % label)
            for x, y in pts:
                f.write("%s %s\n" % (x, y))
            f.write("\n\n")
    subtitle = "%s cores, %.1f GiB, %s; %s" % (machine["cores"], machine["mem_gib"], machine["date"],
                                              " and ".join(command_of(b) for b in benches))
    gp = [
        "set terminal svg size 760,480 dynamic enhanced font 'sans,11' background '#ffffff'",
        "set output '%s'" % svg,
        "set title \"%s\\n{/*0.75 %s}\"" % (title, subtitle.replace("_", "\\\\_")),
        "set xlabel '%s'" % xlabel,
        "set ylabel '%s'" % ylabel,
        "set grid",
        "set key below",
    ]
    if logx:
        gp.append("set logscale x")
    if logy:
        gp.append("set logscale y")
    else:
        gp.append("set yrange [0:*]")
    parts = []
    for i, (label, _) in enumerate(series):
        parts.append("'%s' index %d using 1:2 with %s lw 2 pt 7 title '%s'" % (dat, i, style, label))
    gp.append("plot " + ", \\\n     ".join(parts))
    script = svg.replace(".svg", ".gp")
    with open(os.path.join(out, script), "w") as f:
        f.write("\n".join(gp) + "\n")
    try:
        r = subprocess.run(["gnuplot", script], cwd=out, capture_output=True, text=True)
    except FileNotFoundError:
        md.append("(no plot %s: gnuplot is not installed; its data and script are %s and %s)" % (svg, dat, script))
        md.append("")
        return
    if r.returncode != 0:
        md.append("(plot %s failed: %s)" % (svg, r.stderr.strip()))
        md.append("")
        return
    md.append("![%s](%s)" % (title, svg))
    md.append("")


# ---------------------------------------------------------------------------
md.append("# backline benchmark report")
md.append("")
md.append("- Date: %s (UTC); mode: %s; commit %s" % (machine["date"], machine["mode"], machine["commit"]))
md.append("- Machine: %s; kernel %s" % (machine_line, machine["kernel"]))
md.append("- Command: `%s`" % machine["command"])
md.append("- Each benchmark below measures backline and its ceiling in the same run, on the same machine, one after "
          "the other (api_bench: the two servers take turns within each level, trivial, backline, backline, trivial, "
          "so that the machine's drift over seconds falls on both). On a shared machine (other builds running) the "
          "absolute figures are noisy, by tens of percent; the ratios are steadier than the absolute figures but not "
          "immune.")
md.append("")

# --- HTTP -------------------------------------------------------------------
api = load("api")
lock = load("lock")
if api or lock:
    md.append("## 1. HTTP: durable thread-message posts vs the trivial server, and 6. the single-lock baseline")
    md.append("")
    md.append("backline: `POST /api/v1/threads/{id}/messages`, answered 201 once the message is fsynced in the log. "
              "trivial: the same route on the same HTTP front answering a fixed 201 (the ceiling). single lock: "
              "bench/lock_bench.cpp, the same workload on cpp-httplib with one global mutex around all state and an "
              "fdatasync'd file append per message. The same load generator drives all three.")
    md.append("")
    fa = api["figures"] if api else {}
    fl = lock["figures"] if lock else {}
    levels = sorted({int(k.split("_c")[-1]) for k in list(fa) + list(fl) if k.startswith("rps_")})

    def g(f, key):
        return f.get(key)

    rows = []
    for c in levels:
        b, t, l = g(fa, "rps_backline_c%d" % c), g(fa, "rps_trivial_c%d" % c), g(fl, "rps_lock_c%d" % c)
        rb, rl = ratio(b, t), ratio(b, l)
        rows.append([str(c), fmt(b), fmt(t), fmt(rb, 2), fmt(l), fmt(rl, 2),
                     fmt(g(fa, "p99_ms_backline_c%d" % c), 1), fmt(g(fl, "p99_ms_lock_c%d" % c), 1),
                     "%s / %s" % (fmt(g(fa, "errors_backline_c%d" % c)), fmt(g(fa, "timeouts_backline_c%d" % c)))])
    table(["connections", "backline req/s", "trivial req/s", "backline / trivial", "single lock req/s",
           "backline / single lock", "backline p99 ms", "single lock p99 ms", "backline errors / timeouts"], rows)
    caption("api")
    if lock:
        md.append("*Single lock: command `%s`.*" % command_of("lock"))
        md.append("")
    plot("http_throughput.svg", "Durable posts: requests/s vs keep-alive connections", "connections", "requests/s",
         [("trivial server (ceiling)", [(c, g(fa, "rps_trivial_c%d" % c)) for c in levels]),
          ("backline", [(c, g(fa, "rps_backline_c%d" % c)) for c in levels]),
          ("single lock", [(c, g(fl, "rps_lock_c%d" % c)) for c in levels])],
         [b for b in ("api", "lock") if load(b)])

    for name, f, label in (("backline", fa, "backline"), ("trivial", fa, "trivial server"), ("lock", fl, "single lock")):
        have = [c for c in levels if g(f, "p50_ms_%s_c%d" % (name, c)) is not None]
        if not have:
            continue
        md.append("### Latency, %s" % label)
        md.append("")
        table(["connections", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "errors", "timeouts"],
              [[str(c), fmt(g(f, "rps_%s_c%d" % (name, c))), fmt(g(f, "p50_ms_%s_c%d" % (name, c)), 2),
                fmt(g(f, "p90_ms_%s_c%d" % (name, c)), 2), fmt(g(f, "p99_ms_%s_c%d" % (name, c)), 2),
                fmt(g(f, "p999_ms_%s_c%d" % (name, c)), 2), fmt(g(f, "errors_%s_c%d" % (name, c))),
                fmt(g(f, "timeouts_%s_c%d" % (name, c)))] for c in have])
        caption("lock" if name == "lock" else "api")
        plot("http_latency_%s.svg" % name, "Latency percentiles vs load: %s" % label, "connections", "ms",
             [(p, [(c, g(f, "%s_ms_%s_c%d" % (k, name, c))) for c in have])
              for p, k in (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p999"))],
             ["lock" if name == "lock" else "api"], logy=True)

    # Where the CPU goes: each server's threads over the measured window, per request.
    # Columns by their CPU at 64 connections (the target's level), else at the most connections measured.
    at = 64 if 64 in levels else (max(levels) if levels else 0)
    kinds = sorted({k.split("_c%d_" % c, 1)[1] for c in levels for k in fa
                    if k.startswith("cpu_us_backline_c%d_" % c)},
                   key=lambda k: -(fa.get("cpu_us_backline_c%d_%s" % (at, k)) or 0))
    have = [c for c in levels if g(fa, "cpu_us_backline_c%d" % c) is not None]
    if have:
        md.append("### Where the CPU goes")
        md.append("")
        md.append("CPU time (µs) and context switches per request over the measured window, from each thread's "
                  "`/proc/<pid>/task/<tid>/schedstat` and `status`, by kind of thread: `http` the HTTP workers, "
                  "`caf_workers` CAF's scheduler threads (which CAF 0.17.6 names `caf.multiplexer`), `journal`, "
                  "`journal_write` and `journal_sync` the journal's three detached actors; the trivial server's "
                  "figures leave out the load generator's threads, which share its process.")
        md.append("")
        rows = []
        for c in have:
            rows.append([str(c), "%s / %s" % (fmt(g(fa, "cpu_us_trivial_c%d" % c), 1),
                                             fmt(g(fa, "switches_trivial_c%d" % c), 2)),
                         "%s / %s" % (fmt(g(fa, "cpu_us_backline_c%d" % c), 1),
                                      fmt(g(fa, "switches_backline_c%d" % c), 2))]
                        + ["%s / %s" % (fmt(g(fa, "cpu_us_backline_c%d_%s" % (c, k)), 1),
                                        fmt(g(fa, "switches_backline_c%d_%s" % (c, k)), 2)) for k in kinds])
        table(["connections", "trivial µs / switches", "backline µs / switches"]
              + ["backline `%s`" % k for k in kinds], rows)
        caption("api")

    if api:
        r64, p64 = ratio(g(fa, "rps_backline_c64"), g(fa, "rps_trivial_c64")), g(fa, "p99_ms_backline_c64")
        verdicts.append(("HTTP at 64 connections: ≥ 60% of the trivial server's requests/s",
                         fmt(r64, 2), None if r64 is None else r64 >= 0.6))
        verdicts.append(("HTTP at 64 connections: p99 ≤ 20 ms", fmt(p64, 1) + " ms", None if p64 is None else p64 <= 20))
        t1k, p1k = g(fa, "timeouts_backline_c1000"), g(fa, "p99_ms_backline_c1000")
        verdicts.append(("HTTP at 1,000 connections: no timeouts", fmt(t1k), None if t1k is None else t1k == 0))
        verdicts.append(("HTTP at 1,000 connections: p99 ≤ 100 ms", fmt(p1k, 1) + " ms",
                         None if p1k is None else p1k <= 100))

# --- Journal ----------------------------------------------------------------
jr = load("journal")
if jr:
    f = jr["figures"]
    md.append("## 2. Journal: durable appends vs raw synced RocksDB batches")
    md.append("")
    ns = sorted(int(k[len("journal_n"):]) for k in f if k.startswith("journal_n"))
    table(["appender actors", "journal events/s", "raw synced batches (same keys) events/s", "journal / raw",
           "raw, record key only", "avg batch"],
          [[str(n), fmt(f.get("journal_n%d" % n)), fmt(f.get("raw_batch%d" % n)), fmt(f.get("ratio_n%d" % n), 2),
            fmt(f.get("raw_record_only_batch%d" % n)), fmt(f.get("avg_batch_n%d" % n), 1)] for n in ns])
    md.append("")
    md.append("One fsync per event: %s events/s; the journal at the largest fan-in is %s× that." %
              (fmt(f.get("raw_fsync_per_event")), fmt(f.get("vs_fsync_per_event"), 1)))
    caption("journal")
    plot("journal.svg", "Durable appends/s vs concurrent appenders", "appender actors", "events/s",
         [("raw synced batches (ceiling)", [(n, f.get("raw_batch%d" % n)) for n in ns]),
          ("journal", [(n, f.get("journal_n%d" % n)) for n in ns]),
          ("one fsync per event", [(n, f.get("raw_fsync_per_event")) for n in ns])], ["journal"], logy=True)
    r = jr.get("ratio")
    verdicts.append(("Journal: ≥ 70% of the raw synced-batch rate (256 appenders)", fmt(r, 2),
                     None if r is None else r >= 0.7))

# --- Actors -----------------------------------------------------------------
ac = load("actors")
if ac:
    f = ac["figures"]
    md.append("## 3. Actors: messages/s through directory → thread → journal vs a bare CAF ping-pong")
    md.append("")
    md.append("Each of N poster actors posts thread messages into its own thread, one in flight at a time, through "
              "the real directory, chat and thread actors over a journal on a temporary RocksDB (%s). The ceiling: "
              "N bare CAF request/response pairs with messages of the same types and sizes (request %s bytes of "
              "body, reply %s bytes), in the same actor system configuration. Both figures count round trips (a "
              "command and its answer) per second; a post also makes the thread hand the message to the (in-memory) "
              "Slack port and journal its delivery." %
              ("fsync on, as in production" if ac.get("sync") else "fsync off (store_options.sync = false), so the "
               "actors, not the disk, are measured", fmt(f.get("request_body_bytes")), fmt(f.get("reply_body_bytes"))))
    md.append("")
    ns = sorted(int(k[len("actors_n"):]) for k in f if k.startswith("actors_n"))
    table(["posting threads (fan-in)", "backline posts/s", "CAF ping-pong round trips/s", "backline / ping-pong",
           "backline p99 ms"],
          [[str(n), fmt(f.get("actors_n%d" % n)), fmt(f.get("pingpong_n%d" % n)), fmt(f.get("ratio_n%d" % n), 3),
            fmt(f.get("p99_ms_n%d" % n), 2)] for n in ns])
    if "actors_synced_n%d" % (ns[-1] if ns else 0) in f:
        n = ns[-1]
        md.append("")
        md.append("With fsync on at %d posting threads: %s messages/s." % (n, fmt(f.get("actors_synced_n%d" % n))))
    caption("actors")
    plot("actors.svg", "Thread-message posts through the actors vs bare CAF ping-pong", "posting threads",
         "round trips/s", [("CAF ping-pong (ceiling)", [(n, f.get("pingpong_n%d" % n)) for n in ns]),
                        ("directory → thread → journal", [(n, f.get("actors_n%d" % n)) for n in ns])],
         ["actors"], logy=True)

# --- Scale ------------------------------------------------------------------
sc = load("scale")
if sc:
    f = sc["figures"]
    md.append("## 4. Scale: memory per actor, activation time, start-up time")
    md.append("")
    md.append("A template chat (created, assigned, one thread opened and delivered to the in-memory Slack port) is "
              "made through the real actors, then copied N times straight into a fresh log. The inbox actors start "
              "on that log as `backline serve` does (directory index loaded first); every chat is then activated "
              "from the log by a chat_get, one at a time, then every thread by a thread_get. Memory: the process's "
              "resident set (VmRSS after malloc_trim) before and after, divided by N. Activation: command sent → "
              "answered. Start-up: `backline serve` as a child process, exec → ready file, on a log of copies of a "
              "chat whose thread has 98 messages.")
    md.append("")
    counts = sorted(int(k[len("chats_"):]) for k in f if k.startswith("chats_"))
    table(["chats", "RSS per activated chat actor", "RSS per open thread actor", "chat activation p50 / p99 ms",
           "thread activation p50 / p99 ms", "activated per s"],
          [[fmt(n), "%s B" % fmt(f["chats_%d" % n].get("rss_per_chat_bytes")),
            "%s B" % fmt(f["chats_%d" % n].get("rss_per_thread_bytes")),
            "%s / %s" % (fmt(f["chats_%d" % n].get("chat_activation_p50_ms"), 3),
                         fmt(f["chats_%d" % n].get("chat_activation_p99_ms"), 3)),
            "%s / %s" % (fmt(f["chats_%d" % n].get("thread_activation_p50_ms"), 3),
                         fmt(f["chats_%d" % n].get("thread_activation_p99_ms"), 3)),
            fmt(f["chats_%d" % n].get("chats_activated_per_s"))] for n in counts])
    starts = sorted(int(k[len("startup_"):]) for k in f if k.startswith("startup_"))
    if starts:
        md.append("")
        table(["events in the log", "`backline serve` start-up to ready (s)",
               "first start, directory view built from the whole log (s)", "log written in (s)"],
              [[fmt(n), fmt(f["startup_%d" % n].get("seconds"), 2),
                fmt(f["startup_%d" % n].get("first_start_seconds"), 2), fmt(f["startup_%d" % n].get("fill_seconds"), 1)]
               for n in starts])
    caption("scale")
    plot("scale_rss.svg", "Resident memory per activated actor", "actors", "bytes",
         [("chat actor", [(n, f["chats_%d" % n].get("rss_per_chat_bytes")) for n in counts]),
          ("thread actor", [(n, f["chats_%d" % n].get("rss_per_thread_bytes")) for n in counts]),
          ("target for a chat: 2 KiB", [(n, 2048) for n in counts])], ["scale"])
    if len(starts) > 1:
        plot("scale_startup.svg", "backline serve: start-up to ready vs events in the log", "events in the log",
             "seconds", [("start-up", [(n, f["startup_%d" % n].get("seconds")) for n in starts]),
                         ("target: 5 s", [(n, 5) for n in starts])], ["scale"], logy=True)
    if counts:
        top = f["chats_%d" % counts[-1]]
        v = top.get("rss_per_chat_bytes")
        verdicts.append(("≤ 2 KiB RSS per idle activated chat actor (%s chats)" % fmt(counts[-1]),
                         "%s B" % fmt(v), None if v is None else v <= 2048))
        v = top.get("chat_activation_p99_ms")
        verdicts.append(("Any one chat activated in under 1 ms p99 (%s chats stored; target: 1M)" % fmt(counts[-1]),
                         "%s ms" % fmt(v, 3), None if v is None else v < 1))
    if starts:
        n = starts[-1]
        v = f["startup_%d" % n].get("seconds")
        verdicts.append(("Start-up to serving with %s events: under 5 s (target: 10M)" % fmt(n), "%s s" % fmt(v, 2),
                         None if v is None else v < 5))

# --- Slack ------------------------------------------------------------------
sl = load("slack")
if sl:
    f = sl["figures"]
    md.append("## 5. Slack path: events accepted and event → inbox-visible latency; polling; outbound pacing")
    md.append("")
    ns = sorted(int(k[len("events_"):]) for k in f if k.startswith("events_"))
    if ns:
        table(["open threads", "offered events/s", "accepted events/s", "p50 ms", "p99 ms", "max ms", "read back"],
              [[fmt(n), fmt(f["events_%d" % n]["offered_per_s"]), fmt(f["events_%d" % n]["accepted_per_s"]),
                fmt(f["events_%d" % n]["p50_ms"], 1), fmt(f["events_%d" % n]["p99_ms"], 1),
                fmt(f["events_%d" % n]["max_ms"], 1),
                "%s/%s" % (f["events_%d" % n]["visible_sampled"], f["events_%d" % n]["sampled"])] for n in ns])
        md.append("")
    polls = sorted(k for k in f if k.startswith("poll_budget_"))
    if polls:
        table(["polling budget (calls/window)", "threads", "replies found", "windows needed", "busiest window calls",
               "converged"],
              [[fmt(f[k]["budget"]), fmt(f[k]["threads"]), "%s/%s" % (f[k]["found"], f[k]["replies"]),
                fmt(f[k]["windows"], 1), fmt(f[k]["busiest_window_calls"]), str(f[k]["converged"])] for k in polls])
    caption("slack")
    plot("slack_latency.svg", "Slack event → inbox-visible latency vs open threads", "open threads", "ms",
         [("p50", [(n, f["events_%d" % n]["p50_ms"]) for n in ns]),
          ("p99", [(n, f["events_%d" % n]["p99_ms"]) for n in ns]),
          ("target p99: 50 ms", [(n, 50) for n in ns])], ["slack"])
    paces = sorted(k for k in f if k.startswith("pacing_"))

    def answering(p):  # " (Slack answering in +100 ms)", or "" when the fake answered at once
        return " (Slack answering in +%s ms)" % p["slack_latency_ms"] if p.get("slack_latency_ms") else ""

    if paces:
        md.append("Outbound posts paced at Slack's per-channel rate with every channel busy (agents post faster than "
                  "Slack takes them; the fake limits chat.postMessage per channel as Slack does):")
        md.append("")
        table(["channels", "offered posts/s", "delivered posts/s", "ceiling (channels × rate)", "ratio",
               "busiest channel 1 s / 10 s (allowed)", "429s", "per channel min/max, Jain", "ack → Slack p50 / p99 ms",
               "lag behind ideal pacer p99 ms", "lost / duplicated"],
              [[fmt(f[k]["channels"]) + answering(f[k]) +
                ("" if not f[k].get("callers") else ", %s callers" % f[k]["callers"]),
                fmt(f[k]["offered_per_s"]), fmt(f[k]["delivered_per_s"]),
                "%s (%s × %s/s)" % (fmt(f[k]["ceiling_per_s"]), fmt(f[k]["channels"]),
                                    fmt(f[k]["allowed_per_channel_per_s"], 1)),
                fmt(ratio(f[k]["delivered_per_s"], f[k]["ceiling_per_s"]), 3),
                "%s / %s (%s / %s)" % (f[k]["peak_channel_1s"], f[k]["peak_channel_10s"],
                                       fmt(f[k]["burst"] + f[k]["allowed_per_channel_per_s"]),
                                       fmt(f[k]["burst"] + 10 * f[k]["allowed_per_channel_per_s"])),
                "%s of %s calls" % (fmt(f[k]["ratelimited_429"]), fmt(f[k]["calls"])),
                "%s / %s, %s" % (f[k]["min_per_channel"], f[k]["max_per_channel"], fmt(f[k]["jain"], 4)),
                "%s / %s" % (fmt(f[k]["p50_ms"]), fmt(f[k]["p99_ms"])), fmt(f[k]["lag_p99_ms"]),
                "%s / %s%s" % (f[k]["lost"], f[k]["duplicated"], "" if f[k]["drained"] else " (did not drain)")]
               for k in paces])
        md.append("")
        md.append("Delivered posts/s are counted while every channel's queue was building (after the burst); the "
                  "ack → Slack latency is mostly queueing, since posts are offered faster than Slack's rate; the lag "
                  "is how far each channel's k-th post in Slack trails a perfect token bucket at Slack's rate fed "
                  "the same acknowledged posts. With Slack answering late, a channel's next post waits Slack's "
                  "interval from the answer (so none can reach Slack too soon whatever the network's delay): at most "
                  "1 post per (1 s + answer time) per channel, 0.91 of the ceiling at 100 ms.")
        md.append("")
        for k in paces:
            tl = f[k].get("timeline", [])
            if tl:
                plot("slack_%s.svg" % k,
                     "Outbound posts per second, %s busy channels%s" % (
                         fmt(f[k]["channels"]), answering(f[k])), "second of the run",
                     "posts/s",
                     [("acknowledged by backline", [(i, t[0]) for i, t in enumerate(tl)]),
                      ("accepted by Slack", [(i, t[1]) for i, t in enumerate(tl)]),
                      ("429s", [(i, t[2]) for i, t in enumerate(tl)]),
                      ("ceiling: channels × 1/s", [(i, f[k]["ceiling_per_s"]) for i in range(len(tl))])],
                     ["slack"], logx=False, style="lines")
        for k in paces:
            p = f[k]
            allowed = p["burst"] + p["allowed_per_channel_per_s"]
            verdicts.append(("Slack pacing, %s channels%s: no channel above Slack's rate (no 429, calls in any 1 s "
                             "≤ %s), nothing lost or duplicated" % (
                                 fmt(p["channels"]), answering(p), fmt(allowed)),
                             "busiest 1 s: %s calls; %s 429s; lost %s, duplicated %s" % (
                                 p["peak_channel_1s_calls"], fmt(p["ratelimited_429"]), p["lost"], p["duplicated"]),
                             p["peak_channel_1s_calls"] <= allowed and p["ratelimited_429"] == 0
                             and p["lost"] == 0 and p["duplicated"] == 0 and p["drained"]))
    else:
        md.append("Outbound posts paced at Slack's per-channel rate with 1,000 channels busy: not in this run "
                  "(slack_bench --only without pacing).")
        md.append("")
    worst = max((f["events_%d" % n]["p99_ms"] for n in ns), default=None)
    if worst is not None:
        verdicts.append(("Slack events: p99 event → inbox-visible < 50 ms", fmt(worst, 1) + " ms", worst < 50))

# --- Targets ----------------------------------------------------------------
md.append("## Targets")
md.append("")
table(["target", "measured", "verdict"],
      [[t, m, "–" if ok is None else ("met" if ok else "**MISSED**")] for t, m, ok in verdicts])
md.append("")

for name, what in (("api_profile", "the HTTP posts at 64 connections (api_bench, backline process only)"),
                   ("startup_profile", "`backline serve` starting on 1M events (scale_bench, backline process only)")):
    path = os.path.join(out, name + ".txt")
    if not os.path.exists(path):
        continue
    md.append("### Where the time goes: %s" % what)
    md.append("")
    md.append("Target missed, so profiled once more under perf (`%s`); the top of the profile (full: `%s.txt`):" %
              (command_of(name), name))
    md.append("")
    md.append("```")
    md.extend(l.rstrip()[:160] for l in open(path).read().splitlines()[:45])
    md.append("```")
    md.append("")

failed = [l.strip() for l in open(os.path.join(out, "status.txt"))] if os.path.exists(
    os.path.join(out, "status.txt")) else []
if failed:
    md.append("## Runs")
    md.append("")
    for line in failed:
        md.append("- " + line)
    md.append("")
md.append("Each benchmark's full output is in `<name>.log` beside this report; the plots' data in `*.dat` and "
          "their gnuplot scripts in `*.gp`.")

with open(os.path.join(out, "report.md"), "w") as fh:
    fh.write("\n".join(md) + "\n")
print(os.path.join(out, "report.md"))
