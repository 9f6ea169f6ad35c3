#!/usr/bin/env bash
# Install gsched on one host from a checkout: a virtualenv in /opt/gsched/venv,
# the commands linked into /usr/local/bin, the systemd units, and an example
# configuration if the host has none. Safe to run again (to upgrade, or after a
# failed run): the virtualenv is reused, an existing configuration is never
# touched, units and links are replaced.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: deploy/install.sh [OPTIONS]

Install gsched from this checkout on this host.

  --prefix DIR      install root (default /): DIR/opt/gsched/venv,
                    DIR/etc/gsched/gsched.toml, DIR/etc/systemd/system/*.service,
                    DIR/usr/local/bin links, DIR/var/lib/gsched. With a prefix
                    other than /, the units point into DIR and systemctl is
                    not run.
  --source DIR      the gsched checkout to install (default: the one holding
                    this script)
  --python PATH     interpreter for the virtualenv, Python >= 3.11 (default: python3)
  --pip-args ARGS   extra arguments for pip install, e.g.
                    "--no-index --find-links /srv/wheels" on an offline host
  --no-systemd      do not install the systemd units and do not run systemctl
  --no-links        do not link gsub, gqueue, ... into DIR/usr/local/bin
  -h, --help        this help

What it does (running it again upgrades gsched in place and keeps the config):
  1. creates the virtualenv DIR/opt/gsched/venv (reused when it exists)
  2. pip-installs gsched and its dependencies into it, building from a
     temporary copy so the checkout is left unchanged
  3. links gsched gsub gqueue gcancel ginfo gctl gacct into DIR/usr/local/bin
  4. copies deploy/gsched.toml.example to DIR/etc/gsched/gsched.toml if that
     file does not exist (an existing one is never changed)
  5. creates DIR/var/lib/gsched (the example config's state_dir) and copies
     docs/*.md to DIR/opt/gsched/docs
  6. copies gsched-controller.service and gsched-agent.service to
     DIR/etc/systemd/system and, with prefix /, runs systemctl daemon-reload.
     Units are replaced on every run: put local changes in drop-ins
     (systemctl edit gsched-agent).

It enables and starts nothing. Afterwards edit /etc/gsched/gsched.toml (the
same file on every host), then:
  controller host:  systemctl enable --now gsched-controller
  GPU hosts:        systemctl enable --now gsched-agent
SLURM-named commands (sbatch, squeue, ...) for a login node without SLURM:
  /opt/gsched/venv/bin/gsched shims /usr/local/bin
EOF
}

die() {
    echo "install.sh: error: $*" >&2
    exit 1
}

say() {
    echo "install.sh: $*"
}

prefix=/
source_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python=python3
pip_args=""
systemd=1
links=1

while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix) [[ $# -ge 2 ]] || die "--prefix needs a directory"; prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --source) [[ $# -ge 2 ]] || die "--source needs a directory"; source_dir="$2"; shift 2 ;;
        --source=*) source_dir="${1#*=}"; shift ;;
        --python) [[ $# -ge 2 ]] || die "--python needs a path"; python="$2"; shift 2 ;;
        --python=*) python="${1#*=}"; shift ;;
        --pip-args) [[ $# -ge 2 ]] || die "--pip-args needs a value"; pip_args="$2"; shift 2 ;;
        --pip-args=*) pip_args="${1#*=}"; shift ;;
        --no-systemd) systemd=0; shift ;;
        --no-links) links=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: error: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

# ----------------------------------------------------------------- checks
[[ -f "$source_dir/pyproject.toml" && -f "$source_dir/common/config.py" ]] ||
    die "$source_dir is not a gsched checkout (use --source)"
source_dir="$(cd "$source_dir" && pwd)"
mkdir -p "$prefix" || die "cannot create $prefix"
prefix="$(cd "$prefix" && pwd)"
root="${prefix%/}"  # "" for /, so paths below read $root/opt/...

if [[ -z "$root" && "$(id -u)" -ne 0 ]]; then
    die "installing into / needs root (or use --prefix DIR)"
fi
command -v "$python" >/dev/null 2>&1 || die "python interpreter '$python' not found (use --python)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "gsched needs Python >= 3.11; $python is $("$python" -c 'import sys; print(sys.version.split()[0])')"

venv="$root/opt/gsched/venv"
etc="$root/etc/gsched"
units="$root/etc/systemd/system"
bindir="$root/usr/local/bin"
state="$root/var/lib/gsched"

# ----------------------------------------------------------------- 1. virtualenv
if [[ -x "$venv/bin/python" ]]; then
    say "reusing virtualenv $venv"
else
    say "creating virtualenv $venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
fi

# ----------------------------------------------------------------- 2. gsched
# Build from a copy: pip/setuptools write build/ and *.egg-info next to the
# sources, and the checkout may be shared or read-only.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
tar -C "$source_dir" \
    --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache \
    --exclude=.ruff_cache --exclude=.mypy_cache --exclude=./bench/results \
    -cf - . | tar -C "$tmp" -xf -
say "installing gsched from $source_dir"
# shellcheck disable=SC2086  # pip_args is split on purpose
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check $pip_args "$tmp"
"$venv/bin/gsched" --version >/dev/null || die "the installed gsched does not run"
say "installed $("$venv/bin/gsched" --version)"

# ----------------------------------------------------------------- 3. links
if [[ "$links" -eq 1 ]]; then
    mkdir -p "$bindir"
    for cmd in gsched gsub gqueue gcancel ginfo gctl gacct; do
        ln -sfn "$venv/bin/$cmd" "$bindir/$cmd"
    done
    say "linked gsched gsub gqueue gcancel ginfo gctl gacct into $bindir"
fi

# ----------------------------------------------------------------- docs
mkdir -p "$root/opt/gsched/docs"
for doc in "$source_dir"/docs/*.md; do
    if [[ -e "$doc" ]]; then install -m 0644 "$doc" "$root/opt/gsched/docs/"; fi
done

# ----------------------------------------------------------------- 4. config
mkdir -p "$etc"
if [[ -e "$etc/gsched.toml" ]]; then
    say "keeping existing $etc/gsched.toml"
else
    install -m 0644 "$source_dir/deploy/gsched.toml.example" "$etc/gsched.toml"
    say "wrote example configuration $etc/gsched.toml: edit it before starting anything"
fi
"$venv/bin/python" -c 'import sys; from gsched.common import config; config.load(sys.argv[1])' \
    "$etc/gsched.toml" || say "warning: $etc/gsched.toml does not load (see above)"

# ----------------------------------------------------------------- 5. state dir
mkdir -p "$state"
chmod 0755 "$state"

# ----------------------------------------------------------------- 6. systemd
if [[ "$systemd" -eq 1 ]]; then
    mkdir -p "$units"
    for unit in gsched-controller.service gsched-agent.service; do
        # With a prefix, point the unit at the files installed under it.
        sed -e "s#/opt/gsched/#$root/opt/gsched/#g" -e "s#/etc/gsched/#$root/etc/gsched/#g" \
            "$source_dir/deploy/$unit" >"$tmp/$unit"
        install -m 0644 "$tmp/$unit" "$units/$unit"
    done
    say "installed gsched-controller.service and gsched-agent.service into $units"
    if [[ -z "$root" ]] && command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        systemctl daemon-reload
        say "systemctl daemon-reload done; nothing enabled or started"
    else
        say "systemctl not run (prefix $prefix, or systemd is not running)"
    fi
fi

say "done"
