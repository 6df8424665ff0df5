"""Upstream control-plane programs (kube-apiserver, etcd, ...) built from pinned wrapper Go modules.

`go install k8s.io/kubernetes/cmd/kube-apiserver@v1.37.2` is refused: the upstream go.mod has
`replace` directives (its staging modules), which only a main module may have. So each program has a
small wrapper module in `tools/controlplane/<dir>/` that requires the upstream module, repeats those
replace directives as versions (`k8s.io/api => k8s.io/api v0.37.2`, ...), and names the command in a
`tool` directive (Go >= 1.24): a main package cannot be imported, but a tool's whole import graph is
kept in go.mod and go.sum by `go mod tidy`. `go build` runs inside the wrapper with `-mod=readonly`,
so a build uses exactly what is pinned and never edits it.

Binaries go to a cache outside the repository, keyed by version:
`<cache>/bin/<component>-<version>/<binary>`, the cache being `$MESHPROOF_CACHE_DIR` or
`~/.cache/meshproof`. Beside each binary, `.build.json` records a hash of what it was built from
(go.mod, go.sum, package, ldflags); when those change the binary is rebuilt. An exclusive `flock`
per component and version serialises builds across processes (pytest-xdist workers, two runs at
once): the second waits, then reuses the first one's binary. A build writes to a temporary name and
renames it, so a binary in place is always whole. The `go` process runs under the Supervisor
(own process group, dies with its parent, recorded for `meshproof cleanup`).

To add a program, add a wrapper module and one entry to COMPONENTS; nothing else names them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from meshproof.errors import PrerequisiteError, UserError
from meshproof.processes import Supervisor
from meshproof.runs import RunDir
from meshproof.shipped import shipped

CACHE_VARIABLE = "MESHPROOF_CACHE_DIR"
MODULES_VARIABLE = "MESHPROOF_CONTROLPLANE_MODULES"  # another root of wrapper modules (tests, packaging)
GO_HOW_TO_GET = "install Go >= 1.26 (https://go.dev/dl/) and put `go` on PATH"


def _set(package: str, **values: str) -> tuple[str, ...]:
    """`-X package.name=value` linker flags: how Go programs get their version string."""
    return tuple(f"-X {package}.{name}={value}" for name, value in values.items())


def _kubernetes_version(version: str) -> tuple[str, ...]:
    """What hack/lib/version.sh sets; without it /version says v0.0.0-master and kubectl cannot parse it.
    The tree state is `archive`, as that script says of a build from a source archive (a module zip is
    one); the commit is not known without git, so it stays unset."""
    major, minor = version.removeprefix("v").split(".")[:2]
    return tuple(flag for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
                 for flag in _set(package, gitVersion=version, gitMajor=major, gitMinor=minor,
                                  gitTreeState="archive"))


@dataclass(frozen=True)
class Component:
    """One program: built from `package` inside the wrapper module `wrapper`, pinned at `version`."""

    name: str
    wrapper: str  # directory under tools/controlplane/
    package: str  # the main package, as `go build` names it
    version: str  # the version of the upstream module that provides `package`, as go.mod pins it
    ldflags: tuple[str, ...]
    binary: str
    cold_build: str  # how long a build from an empty Go cache took on 2 cores, for progress lines
    default: bool = True  # built by `meshproof controlplane build` without names (and by the test command)


def _istio_version(pseudo_version: str) -> tuple[str, ...]:
    """What Istio's common/scripts/report_build_info.sh sets for a master snapshot: `<VERSION file>-dev`,
    the commit (the pseudo-version's last part), status Clean; without it istiod and the proxies report
    `unknown`."""
    return _set("istio.io/istio/pkg/version", buildVersion="1.31-dev", buildStatus="Clean", buildTag=pseudo_version,
                buildGitRevision=pseudo_version.rsplit("-", 1)[-1], buildHub="meshproof.local")


def _istio(release: str, pseudo_version: str, *, default: bool = True) -> tuple[Component, ...]:
    """pilot-discovery (istiod) and pilot-agent of one istio master snapshot, `<program>@<release>`; its
    wrapper module is tools/controlplane/istio/<release>/ (see meshproof.backends.istio.local.releases)."""
    return tuple(Component(f"{program}@{release}", f"istio/{release}", f"istio.io/istio/pilot/cmd/{program}",
                           pseudo_version, _istio_version(pseudo_version), program, cold, default)
                 for program, cold in (("pilot-discovery", "about 8 min"), ("pilot-agent", "about 3 min")))


COMPONENTS: dict[str, Component] = {component.name: component for component in (
    Component("etcd", "etcd", "go.etcd.io/etcd/server/v3", "v3.7.3", (), "etcd", "about 1 min"),
    Component("kube-apiserver", "kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver", "v1.37.2",
              _kubernetes_version("v1.37.2"), "kube-apiserver", "about 6 min on 2 idle cores"),
    *_istio("2026-08", "v0.0.0-20260827124520-eed52ebb66ad"),
    *_istio("2026-04", "v0.0.0-20260423205519-b01690e6db7d", default=False),  # for upgrade runs, on demand
    # the GitHub Actions workflow linter, for the nightly workflow users copy (tests/test_workflow.py)
    Component("actionlint", "actionlint", "github.com/rhysd/actionlint/cmd/actionlint", "v1.7.12",
              _set("github.com/rhysd/actionlint", version="v1.7.12"), "actionlint", "about 1 min"),
)}


def component(name: str) -> Component:
    try:
        return COMPONENTS[name]
    except KeyError:
        raise UserError(f"unknown control-plane component {name!r}; choose from {', '.join(COMPONENTS)}") from None


def wrapper_dir(item: Component) -> Path:
    """The wrapper module of `item`: the one function that knows where they live."""
    root = os.environ.get(MODULES_VARIABLE)
    return (Path(root) if root else shipped("tools/controlplane")) / item.wrapper


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_VARIABLE) or Path.home() / ".cache" / "meshproof")


def binary_path(item: Component) -> Path:
    return cache_root() / "bin" / f"{item.name}-{item.version}" / item.binary


def _stamp_path(item: Component) -> Path:
    return binary_path(item).with_name(".build.json")


def log_path(item: Component) -> Path:
    return cache_root() / "logs" / f"{item.name}-{item.version}.log"


def find_go() -> Path:
    go = shutil.which("go")
    if go is None:
        raise PrerequisiteError(f"the Go toolchain (`go`) is not on PATH; the local API server is built from Go "
                                f"modules: {GO_HOW_TO_GET}, then run `meshproof controlplane build`")
    return Path(go)


def go_version(go: Path) -> str:
    done = subprocess.run([str(go), "env", "GOVERSION"], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or "unknown"


def _pinned_version(item: Component, go_mod: str) -> str | None:
    """The version go.mod requires of the module providing `item.package` (the longest matching path)."""
    found: tuple[int, str] | None = None
    for match in re.finditer(r"^\s*(?:require\s+)?(\S+)\s+(v\S+)", go_mod, re.MULTILINE):
        module, version = match.groups()
        if (item.package == module or item.package.startswith(module + "/")) and (
                found is None or len(module) > found[0]):
            found = (len(module), version)
    return None if found is None else found[1]


def _inputs_hash(item: Component) -> str:
    """What a binary is built from; a binary whose stamp says otherwise is stale."""
    directory = wrapper_dir(item)
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        path = directory / name
        try:
            digest.update(path.read_bytes())
        except OSError as exc:
            raise UserError(f"wrapper module of {item.name}: cannot read {path}: {exc.strerror}") from None
    digest.update(json.dumps([item.package, item.version, list(item.ldflags)]).encode())
    return digest.hexdigest()


def _check_pinned(item: Component) -> None:
    go_mod = wrapper_dir(item) / "go.mod"
    pinned = _pinned_version(item, go_mod.read_text())
    if pinned != item.version:
        raise UserError(f"{go_mod} pins {item.package} at {pinned or 'no version'}, but meshproof's component "
                        f"table says {item.version}: make them agree (meshproof/builds.py COMPONENTS)")


def built(item: Component) -> dict[str, object] | None:
    """The build stamp of an up-to-date binary, None when missing or stale."""
    try:
        stamp = json.loads(_stamp_path(item).read_text())
    except (OSError, ValueError):
        return None
    if not binary_path(item).is_file() or stamp.get("inputs") != _inputs_hash(item):
        return None
    return dict(stamp)


class BuildProgress:
    """What a build shows: one line rewritten on a terminal, a line every `interval` s elsewhere."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, interval: float = 30.0) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self._last = 0.0

    def update(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text[:160])
        elif time.monotonic() - self._last >= self.interval:
            self.stream.write(text + "\n")
        else:
            return
        self._last = time.monotonic()
        self.stream.flush()

    def line(self, text: str) -> None:
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()
        self._last = time.monotonic()


@contextmanager
def _build_lock(item: Component, progress: BuildProgress) -> Iterator[None]:
    lock_dir = cache_root() / "bin" / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    handle = os.open(lock_dir / f"{item.name}-{item.version}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress.line(f"meshproof: {item.name} {item.version}: another process is building it; waiting")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def ensure_built(item: Component, *, progress: BuildProgress | None = None) -> Path:
    """The binary of `item`, built first unless an up-to-date one is cached."""
    if built(item) is not None:
        return binary_path(item)
    progress = progress or BuildProgress()
    go = find_go()
    _check_pinned(item)
    with _build_lock(item, progress):
        if built(item) is None:  # whoever held the lock may have built it meanwhile
            _build(item, go, progress)
    return binary_path(item)


def ensure_all(names: Iterable[str] = (), *, progress: BuildProgress | None = None) -> dict[str, Path]:
    """ensure_built for each named component (the default ones when `names` is empty)."""
    items = [component(name) for name in names] or [item for item in COMPONENTS.values() if item.default]
    return {item.name: ensure_built(item, progress=progress) for item in items}


def _build(item: Component, go: Path, progress: BuildProgress) -> None:
    target = binary_path(item)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{item.binary}.{os.getpid()}.tmp")
    log = log_path(item)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"")
    argv = [str(go), "-C", str(wrapper_dir(item)), "build", "-v", "-mod=readonly", "-trimpath", "-buildvcs=false",
            "-ldflags", " ".join(("-s", "-w", *item.ldflags)), "-o", str(temporary), item.package]
    what = f"{item.name} {item.version}"
    progress.line(f"meshproof: building {what} with {go_version(go)} ({item.cold_build} from an empty Go cache; "
                  f"log: {log})")
    started = time.monotonic()
    run = RunDir.create(f"build-{item.name}")
    supervisor = Supervisor(run)
    try:
        child = supervisor.start(f"go-build-{item.name}", argv, log=log)
        while (code := child.exited()) is None:
            progress.update(f"meshproof: building {what}: {_phase(log)}, {time.monotonic() - started:.0f} s")
            time.sleep(0.5)
        if code != 0:
            raise UserError(f"building {what} failed (go build exit {code}): {_first_error(log)}; full log: {log}")
        os.replace(temporary, target)
    finally:
        supervisor.stop_all()
        temporary.unlink(missing_ok=True)
        run.remove()
    seconds = round(time.monotonic() - started, 1)
    stamp = {"component": item.name, "version": item.version, "go": go_version(go), "seconds": seconds,
             "inputs": _inputs_hash(item), "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _stamp_path(item).write_text(json.dumps(stamp, indent=1))
    progress.line(f"meshproof: built {what} in {seconds:.0f} s: {target}")


def _phase(log: Path) -> str:
    """`go build -v` prints each module it downloads and each package it compiles."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "starting"
    downloads = sum(line.startswith("go: downloading ") for line in lines)
    packages = [line for line in lines if line and not line.startswith("go: ")]
    if not packages:
        return f"{downloads} modules downloaded" if downloads else "starting"
    return f"{len(packages)} packages compiled (last {packages[-1]})"


def _first_error(log: Path) -> str:
    """The first line go printed that says something, with its follow-up when it ends in a colon (the
    package names `go build -v` prints contain no spaces)."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        lines = []
    said = [line for line in lines if " " in line and not line.startswith("go: downloading ")]
    if not said:
        return next((line for line in reversed(lines) if line), "no output")
    index = lines.index(said[0])
    follow = lines[index + 1] if said[0].endswith(":") and index + 1 < len(lines) else ""
    return f"{said[0]} {follow}".strip()[:400]


def doctor_lines() -> list[str]:
    """`meshproof doctor`'s section: the Go toolchain and each binary, built or how to get it."""
    lines = ["controlplane (programs built from pinned Go modules: etcd + kube-apiserver for a local API server, "
             "istiod builds, actionlint):"]
    go = shutil.which("go")
    if go is None:
        lines += ["  MISSING  go: not found on PATH", f"           get it: {GO_HOW_TO_GET}"]
    else:
        lines.append(f"  ok       go {go_version(Path(go))} ({go})")
    for item in COMPONENTS.values():
        stamp = built(item)
        if stamp is not None:
            lines.append(f"  ok       {item.name} {item.version} ({binary_path(item)}, built with {stamp.get('go')} "
                         f"in {stamp.get('seconds')} s)")
        else:
            lines += [f"  MISSING  {item.name} {item.version}: not built",
                      f"           get it: meshproof controlplane build {item.name} ({item.cold_build} cold; "
                      f"tests build it on first use)"]
    return lines
