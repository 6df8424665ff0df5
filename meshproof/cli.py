"""The `meshproof` command: run | up | status | down | report | compare | render | doctor | cleanup |
controlplane.

Exit codes of `run`: 0 every selected check passed (skips allowed), 1 a check failed or errored,
2 bad input or a missing prerequisite (one line on stderr, nothing left running), 130 interrupted
(the partial results.json is written). `compare --fail-on-regression`: 0 no regression, 1 a regression
(one line each), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import pytest
import yaml

import meshproof
from meshproof import builds, registry, runs, scenario
from meshproof.attach import commands as attach_commands
from meshproof.capabilities import CAPABILITIES, parse_only
from meshproof.descriptor import RUN_FLAGS, Options, as_arguments, flag, ready_somewhere
from meshproof.errors import UserError
from meshproof.load.profile import load_load_profile
from meshproof.profile import load_profile
from meshproof.report import write_reports
from meshproof.report.compare import Run
from meshproof.report.compare import compare as compare_runs
from meshproof.report.compare_render import FORMATS, render_comparison
from meshproof.report.progress import Progress
from meshproof.report.summary import render_summary
from meshproof.report.view import read_run
from meshproof.results import load_results
from meshproof.session import SESSION
from meshproof.shipped import PACKAGE_DIR, shipped

SUITES_DIR = shipped("suites")
#: pytest settings of a `meshproof run`, shipped in the package: the user's own pytest config never applies
RUN_INI = PACKAGE_DIR / "run.ini"


def _fail(message: str, code: int = 2) -> int:
    print(f"meshproof: error: {message}", file=sys.stderr)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshproof", description="Conformance and chaos checks for service meshes.")
    parser.add_argument("--version", action="version", version=f"meshproof {meshproof.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the suites against a mesh and write results.json + junit.xml",
                              description="Run the suites. Arguments after -- go to pytest (e.g. -- -k identity).")
    run.add_argument("--mesh", default="local", help=f"one of {', '.join(registry.MESHES)} (default local)")
    run.add_argument("--profile", help="YAML file, or a shipped profile name (e.g. seed)")
    run.add_argument("--only", help=f"capabilities, comma-separated: {','.join(CAPABILITIES)}")
    run.add_argument("--envoy-config-hook", metavar="MODULE:FUNCTION",
                     help="function(workload_name, config) -> config for every local-mesh Envoy config")
    for name, keywords in RUN_FLAGS.items():
        run.add_argument(flag(name), **keywords)
    run.add_argument("--out", type=Path, help="output directory (default reports/<timestamp>/)")
    report = commands.add_parser("report", help="render a run's reports again from its results.json",
                                 description="Write junit.xml, report.html, summary.md and conformance.yaml "
                                             "from an archived run's results.json.")
    report.add_argument("run_dir", type=Path, metavar="DIR", help="a run's --out directory (or its results.json)")
    report.add_argument("--out", type=Path, help="where to write them (default: beside results.json)")
    compare = commands.add_parser("compare", help="compare runs: checks, load and chaos metrics, regressions",
                                  description="Compare later runs with the first (the reference): statuses, "
                                              "measured values, metric changes with their significance.")
    compare.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories or results.json files")
    compare.add_argument("--format", choices=FORMATS, default="text")
    compare.add_argument("--fail-on-regression", action="store_true",
                         help="exit 1 when a later run regressed (thresholds: the profile's regression section)")
    compare.add_argument("--profile", help="YAML file or shipped name whose regression thresholds apply")
    render = commands.add_parser("render", help="print what a mesh would be given for the seed scenario",
                                 description="Print the configuration each mesh gets for the seed's resources: "
                                             "Kubernetes manifests (validated against the CRDs) or Envoy configs.")
    render.add_argument("--mesh", default="local", help=f"one of {', '.join(registry.MESHES)} (default local)")
    render.add_argument("--profile", help="YAML file, or a shipped profile name (e.g. seed)")
    doctor = commands.add_parser("doctor", help="which prerequisites each mesh has here, and how to get the rest")
    doctor.add_argument("--mesh", help="only this mesh; exit 2 when it cannot run")
    up = commands.add_parser("up", help="start a mesh that stays up (for chaos run, scripts, a second process)",
                             description="Start the mesh in a daemon of its own, print how to reach it, return.")
    up.add_argument("--mesh", default="local", help=f"one of {', '.join(registry.MESHES)} (default local)")
    up.add_argument("--profile", help="YAML file, or a shipped profile name (e.g. seed)")
    up.add_argument("--envoy-config-hook", metavar="MODULE:FUNCTION", help="as for run (local mesh)")
    for name, keywords in RUN_FLAGS.items():
        up.add_argument(flag(name), **keywords)
    commands.add_parser("status", help="the mesh meshproof up started: what runs, how to reach it")
    commands.add_parser("down", help="stop the mesh meshproof up started, and everything it started")
    cleanup = commands.add_parser("cleanup", help="remove what killed runs left behind (processes, keys, clusters)")
    cleanup.add_argument("--all", action="store_true", help="also runs whose owner still lives (stop them first)")
    controlplane = commands.add_parser("controlplane", help="the local Kubernetes API server (etcd + kube-apiserver)")
    actions = controlplane.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="build the binaries from their pinned Go modules (or reuse them)")
    build.add_argument("components", nargs="*", metavar="COMPONENT",
                    help=f"any of {', '.join(builds.COMPONENTS)} (default: all but older istio releases)")
    check = actions.add_parser("check", help="apply every rendered manifest to a local API server and read it back")
    check.add_argument("--mesh", choices=("istio", "linkerd"), action="append", help="default: both")
    check.add_argument("--profile", help="YAML file, or a shipped profile name (e.g. seed)")
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    pytest_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, pytest_args = argv[:split], argv[split + 1 :]
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            code = run(args, pytest_args)
        elif args.command == "report":
            code = report(args.run_dir, args.out)
        elif args.command == "compare":
            code = compare(args.runs, args.format, args.profile, fail_on_regression=args.fail_on_regression)
        elif args.command == "render":
            code = render(args.mesh, args.profile)
        elif args.command == "doctor":
            code = doctor(args.mesh)
        elif args.command == "controlplane":
            code = controlplane(args)
        elif args.command == "up":
            code = attach_commands.up(args.mesh, args.profile, Options(
                envoy_config_hook=args.envoy_config_hook, **{name: getattr(args, name) for name in RUN_FLAGS}))
        elif args.command == "status":
            code = attach_commands.status()
        elif args.command == "down":
            code = attach_commands.down()
        elif args.command == "controlplane":
            code = controlplane(args)
        else:
            code = cleanup(include_live=args.all)
    except UserError as exc:
        code = _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM takes the same orderly path as Ctrl-C


def run(args: argparse.Namespace, pytest_args: list[str]) -> int:
    options = Options(envoy_config_hook=args.envoy_config_hook, **{name: getattr(args, name) for name in RUN_FLAGS})
    registry.check_options(args.mesh, options)
    profile = load_profile(args.profile)
    load_load_profile(profile.load.profile)
    parse_only(args.only)
    out = args.out or Path("reports") / time.strftime("%Y%m%d-%H%M%S")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create it: {exc.strerror}") from None
    pytest_argv = [
        str(SUITES_DIR), "--rootdir", str(SUITES_DIR), "-c", str(RUN_INI),
        "-p", "no:terminal", "--mesh", args.mesh, "--out", str(out),
    ]
    for option, value in (("--profile", args.profile), ("--only", args.only)):
        if value:
            pytest_argv += [option, value]
    pytest_argv += as_arguments(options)
    progress = Progress(sys.stdout, tty=sys.stdout.isatty() and os.environ.get("CI") is None)
    plugin = _SessionBridge(progress)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        exit_code = pytest.main(pytest_argv + pytest_args, plugins=[progress, plugin])
    finally:
        signal.signal(signal.SIGTERM, previous)
        progress.clear()
    results_path = out / "results.json"
    if plugin.fatal:
        return _fail(plugin.fatal)
    if results_path.exists():
        results = load_results(results_path)
        if results["checks"]:
            print(render_summary(results, results_path=str(results_path)))
    if exit_code == pytest.ExitCode.INTERRUPTED:
        print(f"meshproof: interrupted; partial results in {results_path}", file=sys.stderr)
        return 130
    if exit_code == pytest.ExitCode.NO_TESTS_COLLECTED:
        selection = " ".join(["--only", args.only or "(all)", *pytest_args])
        return _fail(f"no check selected by {selection}")
    if exit_code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        return _fail(plugin.usage_error or f"pytest could not run the suites (exit {int(exit_code)})")
    profile_note = "" if profile.name == "default" else f" with profile {profile.name}"
    if exit_code == pytest.ExitCode.OK:
        return 0
    print(f"meshproof: checks failed{profile_note}", file=sys.stderr)
    return 1


class _SessionBridge:
    """Connects the CLI to the plugin's session: progress in, fatal errors out."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.fatal: str | None = None
        self.usage_error: str | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        session = config.stash.get(SESSION, None)
        if session is not None:
            session.progress = self.progress.progress

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        state = session.config.stash.get(SESSION, None)
        if state is not None:
            self.fatal = state.fatal


def render(mesh: str, profile_spec: str | None) -> int:
    chosen = registry.descriptor(mesh)
    profile = load_profile(profile_spec)
    rendered = chosen.render(scenario.seed_intents(profile), scenario.WORKLOADS)
    print(f"# meshproof render --mesh {mesh}: the seed scenario with profile {profile.name} ({rendered.note})")
    for gap in rendered.left_out:
        print(f"# not rendered: {gap}")
    print(yaml.safe_dump_all(rendered.documents, sort_keys=False), end="")
    return 0


def report(run_dir: Path, out: Path | None) -> int:
    results = read_run(run_dir)
    target = out or (run_dir if run_dir.is_dir() else run_dir.parent)
    try:
        target.mkdir(parents=True, exist_ok=True)
        written = write_reports(results, target)
    except OSError as exc:
        raise UserError(f"--out {target}: cannot write there: {exc.strerror}") from None
    print("meshproof: wrote " + ", ".join(str(path) for path in written))
    return 0


def compare(paths: list[Path], fmt: str, profile_spec: str | None, *, fail_on_regression: bool) -> int:
    if len(paths) < 2:
        raise UserError("compare needs at least two runs: meshproof compare REFERENCE OTHER [MORE ...]")
    gate = load_profile(profile_spec).regression
    runs = [Run(str(path), read_run(path)) for path in paths]
    comparison = compare_runs(runs, gate)
    print(render_comparison(comparison, fmt), end="")
    if fail_on_regression and comparison.regressions:
        for reason in comparison.regressions:
            print(f"meshproof: regression: {reason}", file=sys.stderr)
        return 1
    return 0


def doctor(only_mesh: str | None) -> int:
    """Each mesh's prerequisites, for every cluster it runs on; exit 0 when the chosen mesh (default: local)
    can run on one of them."""
    chosen = [registry.descriptor(only_mesh)] if only_mesh else list(registry.DESCRIPTORS.values())
    ready = {}
    for descriptor in chosen:
        print(f"{descriptor.name}: {descriptor.summary}")
        prerequisites = descriptor.prerequisites()
        for item in prerequisites:
            where = f" (--cluster {' or '.join(item.clusters)})" if item.clusters else ""
            print(f"  {'ok     ' if item.present else 'MISSING'}  {item.name}{where}: {item.detail}")
            if not item.present and item.how_to_get:
                print(f"           get it: {item.how_to_get}")
        ready[descriptor.name] = ready_somewhere(prerequisites)
    if only_mesh != "local":
        print("\n".join(builds.doctor_lines()))
    return 0 if ready[only_mesh or "local"] else 2


def cleanup(*, include_live: bool) -> int:
    leftovers = runs.leftover_runs(include_live=include_live)
    if not leftovers:
        print("meshproof: nothing to clean up")
        return 0
    for run_dir in leftovers:
        killed = runs.kill_processes(run_dir.processes())
        resources = run_dir.resources()
        for resource in resources:
            _remove_resource(resource)
        run_dir.remove()
        print(f"meshproof: removed {run_dir.path.name}: {len(killed)} process(es) stopped, "
              f"{len(resources)} resource(s) removed, keys and configs deleted")
    return 0


def controlplane(args: argparse.Namespace) -> int:
    if args.action == "build":
        for name, path in builds.ensure_all(args.components, progress=builds.BuildProgress()).items():
            print(f"{name}: {path}")
        return 0
    from meshproof.backends.kube import acceptance

    return acceptance.check(args.mesh or ("istio", "linkerd"), args.profile, progress=builds.BuildProgress())


def _remove_resource(resource: dict[str, str]) -> None:
    if resource["kind"] == "kube-namespace":
        from meshproof.backends.kube.cluster import remove_recorded

        print(f"meshproof: {remove_recorded(resource)}")
    elif resource["kind"] == "kind-cluster":
        from meshproof.backends.kube import kind

        print(f"meshproof: {kind.delete_recorded(resource)}")
    else:
        print(f"meshproof: cannot remove unknown {json.dumps(resource)}; remove it by hand", file=sys.stderr)
