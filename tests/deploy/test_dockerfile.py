"""The Dockerfile (checked, not built: no Docker engine runs here).

It must parse, run as a numeric non-root user, install only the core and the chosen providers, and
start ``lbprov run``, a command the CLI really has, with the metrics port exposed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import deploy_testlib as lib
import pytest

DOCKERFILE = lib.REPO / "Dockerfile"


@pytest.fixture(scope="module")
def dockerfile() -> lib.Dockerfile:
    return lib.parse_dockerfile(DOCKERFILE.read_text())


def test_parser_rejects_unknown_instructions_and_dangling_continuations() -> None:
    # The parser is strict, so that the checks below cannot pass on a file Docker would reject.
    with pytest.raises(ValueError, match="unknown Dockerfile instruction"):
        lib.parse_dockerfile("FROM python:3.11-slim\nRUNN echo hi\n")
    with pytest.raises(ValueError, match="continuation"):
        lib.parse_dockerfile("FROM python:3.11-slim\nRUN echo \\\n")


def test_dockerfile_parses_into_a_build_and_a_runtime_stage(dockerfile: lib.Dockerfile) -> None:
    assert dockerfile.stages() == 2
    first = dockerfile.instructions[0]
    assert first.cmd == "ARG" or first.cmd == "FROM"


def test_base_image_is_slim_python_311(dockerfile: lib.Dockerfile) -> None:
    global_args = {
        k: v
        for i in dockerfile.instructions
        if i.stage == -1 and i.cmd == "ARG"
        for k, v in lib.parse_key_values(i.value).items()
    }
    for stage in range(dockerfile.stages()):
        (from_,) = dockerfile.in_stage(stage, "FROM")
        image = from_.value.split()[0]
        image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args[m.group(1) or m.group(2)], image)
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", image), image


def test_runs_as_a_numeric_non_root_user(dockerfile: lib.Dockerfile) -> None:
    users = dockerfile.final("USER")
    assert users, "the runtime stage must name a USER"
    user, _, group = users[-1].value.partition(":")
    # Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
    assert user.isdigit() and int(user) != 0, users[-1].value
    assert not group or (group.isdigit() and int(group) != 0)
    # Nothing after USER switches back to root.
    last_user_line = users[-1].lineno
    later = [i for i in dockerfile.final("RUN") if i.lineno > last_user_line]
    assert not later, "RUN after USER would run as the unprivileged user; keep installs before it"


def test_the_deployment_runs_as_the_image_user(dockerfile: lib.Dockerfile) -> None:
    user, _, group = dockerfile.final("USER")[-1].value.partition(":")
    pod = lib.find(lib.render("base"), "Deployment", "lbprov")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(user)
    if group:
        assert pod["securityContext"]["runAsGroup"] == int(group)


def test_entrypoint_is_lbprov_run_in_exec_form(dockerfile: lib.Dockerfile) -> None:
    (entrypoint,) = dockerfile.final("ENTRYPOINT")
    assert entrypoint.exec_form() == ["lbprov", "run"]
    assert not dockerfile.final("CMD"), "arguments come from the Deployment, not a CMD"


def test_entrypoint_matches_the_cli() -> None:
    # The console script is named lbprov, and `lbprov run` is a real subcommand.
    pyproject = tomllib.loads((lib.REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["lbprov"] == "lbprov.cli:main"
    proc = subprocess.run(
        [sys.executable, "-m", "lbprov", "run", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: lbprov run" in proc.stdout


def test_exposes_the_metrics_port_the_deployment_uses(dockerfile: lib.Dockerfile) -> None:
    exposed = {int(p.split("/")[0]) for i in dockerfile.final("EXPOSE") for p in i.value.split()}
    container = lib.find(lib.render("base"), "Deployment", "lbprov")["spec"]["template"]["spec"][
        "containers"
    ][0]
    ports = {p["containerPort"] for p in container["ports"]}
    assert ports and ports <= exposed, (ports, exposed)


def _provider_dirs() -> list[str]:
    return sorted(p.parent.name for p in (lib.REPO / "providers").glob("*/pyproject.toml"))


def test_providers_build_arg_defaults_to_every_provider(dockerfile: lib.Dockerfile) -> None:
    (build_stage_args,) = [i for i in dockerfile.in_stage(0, "ARG") if i.value.startswith("PROVIDERS")]
    default = lib.parse_key_values(build_stage_args.value)["PROVIDERS"].split()
    assert sorted(default) == _provider_dirs()


def _install_script(dockerfile: lib.Dockerfile) -> str:
    runs = [i.value for i in dockerfile.in_stage(0, "RUN") if "pip install" in i.value]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.parametrize("providers", ["aws gcp azure", "aws", "gcp azure"])
def test_install_step_installs_the_core_and_only_the_chosen_providers(
    dockerfile: lib.Dockerfile, providers: str, tmp_path: Path
) -> None:
    # Run the RUN step's shell script for real with `python -m venv` and pip replaced by recorders,
    # in a copy of the build context's layout: what would pip be asked to install?
    script = _install_script(dockerfile)
    ctx = tmp_path / "src"
    for name in _provider_dirs():
        (ctx / "providers" / name).mkdir(parents=True)
        (ctx / "providers" / name / "pyproject.toml").write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "record"
    fake_python = bin_dir / "python"
    # `python -m venv DIR` creates DIR/bin/{pip,lbprov} recorders.
    fake_python.write_text(
        "#!/bin/sh\n"
        'dir="$3"; mkdir -p "$dir/bin"\n'
        f'printf \'#!/bin/sh\\necho "$(basename "$0") $*" >> {record}\\n\' > "$dir/bin/pip"\n'
        'cp "$dir/bin/pip" "$dir/bin/lbprov"; chmod +x "$dir/bin/pip" "$dir/bin/lbprov"\n'
    )
    fake_python.chmod(0o755)
    venv = tmp_path / "opt"
    script = script.replace("/opt/lbprov", str(venv))
    proc = subprocess.run(
        ["sh", "-c", script],
        cwd=ctx,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "PROVIDERS": providers},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    lines = record.read_text().splitlines()
    installs = [line.split()[2:] for line in lines if line.startswith("pip install")]
    assert installs == [[".", *(f"./providers/{p}" for p in providers.split())]]
    # Never editable, never with test or sandbox extras.
    assert not any("-e" in args or "[" in " ".join(args) for args in installs)
    # The build proves the entry points load.
    assert "lbprov providers" in lines


def test_install_step_fails_for_an_unknown_provider(dockerfile: lib.Dockerfile, tmp_path: Path) -> None:
    script = (
        _install_script(dockerfile).replace("python -m venv", "true").replace("/opt/lbprov/bin/", "echo ")
    )
    proc = subprocess.run(
        ["sh", "-c", script],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PROVIDERS": "nosuchcloud"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "unknown provider: nosuchcloud" in proc.stderr


def test_runtime_stage_copies_only_the_virtualenv(dockerfile: lib.Dockerfile) -> None:
    copies = dockerfile.final("COPY")
    assert [c.value for c in copies] == ["--from=build /opt/lbprov /opt/lbprov"]
    env = {k: v for i in dockerfile.final("ENV") for k, v in lib.parse_key_values(i.value).items()}
    assert env["PATH"].startswith("/opt/lbprov/bin:")
    # The root filesystem is read-only in the Deployment: no .pyc writes.
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    # Two malloc arenas, not one per worker thread: half the RSS growth per Service (bench/scale_memory.py).
    assert env["MALLOC_ARENA_MAX"] == "2"


def test_dockerignore_keeps_the_context_to_what_the_build_copies(dockerfile: lib.Dockerfile) -> None:
    lines = [
        line.strip()
        for line in (lib.REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Everything is excluded first, then exactly what COPY needs is let back in.
    assert lines[0] == "**"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    sources: set[str] = set()
    for copy in dockerfile.in_stage(0, "COPY"):
        *srcs, _dest = copy.value.split()
        sources.update(s.rstrip("/") for s in srcs if not s.startswith("--"))
    assert included == sources
    for src in sources:
        assert (lib.REPO / src).exists(), src
    # Test suites and build leftovers stay out.
    assert "providers/*/tests" in lines
    assert "**/__pycache__" in lines


def test_dockerignore_matcher_follows_docker_semantics() -> None:
    rx = lib._dockerignore_regex
    assert rx("**/__pycache__").match("__pycache__") and rx("**/__pycache__").match("a/b/__pycache__")
    assert rx("providers/*/tests").match("providers/aws/tests")
    assert not rx("providers/*/tests").match("providers/aws/src/tests")
    assert rx("**").match("anything/at/all")


def test_build_context_holds_exactly_what_the_build_needs() -> None:
    files = lib.docker_context(lib.REPO)
    assert {"pyproject.toml", "README.md"} <= set(files)
    assert all(f.startswith(("lbprov/", "providers/")) for f in files if "/" in f)
    assert not [f for f in files if "__pycache__" in f or ".egg-info" in f or f.endswith(".pyc")]
    assert not [f for f in files if re.match(r"providers/[^/]+/tests/", f)]
    for name in _provider_dirs():
        assert f"providers/{name}/pyproject.toml" in files


@pytest.mark.timeout(600)
def test_image_packages_build_from_the_build_context(tmp_path: Path) -> None:
    # What the image's RUN step installs, built as wheels from a copy of exactly the context
    # `docker build` would send (per .dockerignore): nothing the build needs is ignored.
    import shutil
    import zipfile

    ctx = tmp_path / "ctx"
    for rel in lib.docker_context(lib.REPO):
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib.REPO / rel, ctx / rel)
    out = tmp_path / "wheels"
    targets = [".", *(f"./providers/{p}" for p in _provider_dirs())]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), *targets],
        cwd=ctx,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    wheels = {w.name.split("-")[0]: w for w in out.glob("*.whl")}
    assert set(wheels) == {"lbprov", *(f"lbprov_{p}" for p in _provider_dirs())}
    with zipfile.ZipFile(wheels["lbprov"]) as whl:
        names = whl.namelist()
        assert "lbprov/cli/run.py" in names and "lbprov/py.typed" in names
        entry_points = whl.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        assert "lbprov = lbprov.cli:main" in entry_points  # the ENTRYPOINT's console script
    for p in _provider_dirs():
        with zipfile.ZipFile(wheels[f"lbprov_{p}"]) as whl:
            names = whl.namelist()
            entry_points = whl.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
            assert "[lbprov.providers]" in entry_points and f"{p} = " in entry_points
            assert not [n for n in names if "/tests/" in n]
