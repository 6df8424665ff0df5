"""Load: the latency a mesh adds under open-model load, with confidence intervals, and what its proxies cost.

Locust drives the load in its own processes (importing it monkey-patches with gevent); requests follow a
constant-rate or Poisson schedule and each latency counts from the request's due time, so a stall shows;
raw timings go into HDR histograms per time block, merged across Locust workers. Baseline (straight to the
app) and mesh path (through both sidecars) alternate block by block in one run.

- profile.py: load profiles (loadprofiles/*.yaml)      - schedule.py: the plan and the latency arithmetic
- generator.py: the Locust program (never imported)   - blocks.py: per-block HDR histograms and merging
- driver.py: runs the generator, samples the proxies  - analysis.py: overhead with CIs, validity, proxy cost

`driver.measure_rate()` gives one rate's `RateResult`; its `entry` is one item of results.json's `load`
list: {"profile", "target_rps", "achieved_rps", "duration_s" (measured seconds per path), "baseline_us"
and "mesh_us": {"p50", "p90", "p99", "p999"}, "overhead_us": {quantile: {"value", "ci": [lo, hi]}},
"generator_lag_us" (scheduling lag): {"p50", "p90", "p99", "p999", "max"}, "proxy": {name: {"cpu_s", "vcpu",
"vcpu_per_1000rps", "rss_mib": {"idle", "steady", "peak"}}}, "valid", "latency_blocks": {"encoding", "baseline":
[...], "mesh": [...]}} (each measured block's latencies as an encoded HDR histogram, pair i at index i).

This package imports nothing of a mesh backend: it gets two URLs and the proxies' pids (`LoadSetup`).
"""
