#!/usr/bin/env bash
# The Raspberry Pi path on arm64 binaries: an emulated Debian 12 (bookworm) arm64 userland with
# its Python 3.11, as 64-bit Raspberry Pi OS has, where `pip install ".[pi]"` picks the aarch64
# wheels a Pi gets. There it runs the Pi test suite (as .ci/pi_env.sh does on x86-64) and
# `tfuq predict` on photos with the demo model, and compares the outputs with the same
# commands on x86-64: tflite-runtime bit for bit, ai-edge-litert within the measured bound
# (tests/pi/cross_arch.py). docs/raspberry_pi.md says what it found.
#
#   bash .ci/arm64.sh [MAIN_PYTHON [DEMO_MODEL_DIR]]
#
# MAIN_PYTHON has tfuq[all] (default .venv/bin/python); DEMO_MODEL_DIR holds model.tflite and
# its photos from android_demo/tools/demo_model.py (made here when not given). The x86-64 side
# is the Pi venv .ci/pi_env.sh leaves ($PI_VENV, default .venv-pi).
#
# The userland is not debootstrapped (its second stage takes 18 min under emulation): apt-get,
# with its own state in a temporary folder and the host's Debian sources, downloads python3.11-venv
# and its dependencies for arm64 (about 50 packages, 21 MB), `dpkg -x` unpacks them, and binfmt
# runs the arm64 binaries with qemu-user-static in a chroot, inside a private mount namespace
# (unshare) so no mount outlives the job. Needs root; skips with one line where qemu and binfmt
# cannot be set up, fails otherwise.
#
# qemu-user 7.2 (bookworm) shows arm64 programs the host's x86 /proc/cpuinfo, on which
# ai-edge-litert's CPU detection crashes (see docs/raspberry_pi.md); a real Pi's kernel shows
# its own, so the chroot gets a Raspberry Pi 4's (Cortex-A72) and qemu emulates that CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
main_python=${1:-.venv/bin/python}
demo_dir=${2:-}
pi_venv=${PI_VENV:-.venv-pi}
started=$SECONDS
lap() { echo "   ($((SECONDS - started)) s so far)"; }
skip() { echo "SKIPPED the arm64 job: $*"; exit 0; }

echo "== arm64: qemu-user-static and binfmt"
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    [ "$(id -u)" = 0 ] || skip "needs root to register qemu-aarch64 with binfmt_misc"
    if ! command -v qemu-aarch64-static > /dev/null || ! command -v update-binfmts > /dev/null; then
        command -v apt-get > /dev/null || skip "no apt-get to install qemu-user-static"
        timeout 600 bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            -o DPkg::Lock::Timeout=300 qemu-user-static binfmt-support' > /dev/null \
            || skip "apt-get could not install qemu-user-static and binfmt-support"
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2> /dev/null \
            || skip "binfmt_misc cannot be mounted here (no privilege for it)"
    fi
    update-binfmts --enable qemu-aarch64 > /dev/null 2>&1 || true
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || skip "qemu-aarch64 could not be registered with binfmt_misc"
fi
# F: the kernel opened the interpreter at registration, so it runs inside a chroot too.
grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || skip "qemu-aarch64 is registered without the F flag, so it cannot run inside a chroot"
command -v unshare > /dev/null && command -v chroot > /dev/null || skip "needs unshare and chroot (util-linux, coreutils)"
echo "binfmt: $(grep -E '^(interpreter|flags)' /proc/sys/fs/binfmt_misc/qemu-aarch64 | tr '\n' ' ')"
echo "qemu: $(qemu-aarch64-static --version | head -1)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"

echo "== arm64: Debian bookworm arm64 Python 3.11 from .debs (apt-get download, dpkg -x)"
apt_dir=$work/apt
mkdir -p "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial"
touch "$apt_dir/state/status"  # nothing installed: apt resolves every dependency
apt_options=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1 -o APT::Sandbox::User=root
    -o Dir::State="$apt_dir/state" -o Dir::State::status="$apt_dir/state/status" -o Dir::Cache="$apt_dir/cache")
timeout 300 apt-get "${apt_options[@]}" update -qq
# libstdc++6: the interpreter wheels link it; python3.11-venv brings python3.11 and pip's wheel;
# dash: a shell to start commands in /src.
timeout 300 apt-get "${apt_options[@]}" install -qq -y --download-only --no-install-recommends \
    python3.11-venv libstdc++6 dash > /dev/null
debs=("$apt_dir"/cache/archives/*.deb)
for deb in "${debs[@]}"; do dpkg -x "$deb" "$root"; done
echo "unpacked ${#debs[@]} arm64 packages ($(du -sh "$apt_dir/cache/archives" | cut -f1)):" \
    "$(cd "$apt_dir/cache/archives" && ls | grep -E '^(python3\.11|libpython3\.11-stdlib|libc6|python3-pip-whl)_' | tr '\n' ' ')"
mkdir -p "$root"/{dev,proc,sys,tmp,root,src,fixtures,photos,out} "$root/etc/ssl/certs"
chmod 1777 "$root/tmp"
for node in null:3 zero:5 random:8 urandom:9; do mknod -m 666 "$root/dev/${node%:*}" c 1 "${node#*:}"; done
cp /etc/resolv.conf "$root/etc/"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"  # the host's, proxies and all
# A Raspberry Pi 4's /proc/cpuinfo (Cortex-A72, r0p3), one entry per host CPU so that it
# agrees with the host's /sys/devices/system/cpu.
for cpu in $(seq 0 $(($(nproc --all) - 1))); do
    printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$cpu"
    printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
done > "$work/pi4_cpuinfo"
printf 'Hardware\t: BCM2835\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n' >> "$work/pi4_cpuinfo"
# The repository as committed plus the working tree's changes (what CI checked out).
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$root/src"

# arm64 COMMAND...: run in the chroot from /src, as a Pi would: its /proc/cpuinfo, a Cortex-A72.
# With PI_CPUINFO=host the chroot sees the host's x86 /proc/cpuinfo instead.
arm64() {
    local cpuinfo=$work/pi4_cpuinfo
    [ "${PI_CPUINFO:-pi4}" = host ] && cpuinfo=host
    timeout 1200 env -i HOME=/root PATH=/pi/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 QEMU_CPU=cortex-a72 \
        PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off \
        PIP_NO_CACHE_DIR=1 PIP_DEFAULT_TIMEOUT=180 ${PIP_INDEX_URL:+PIP_INDEX_URL=$PIP_INDEX_URL} \
        ${HTTPS_PROXY:+HTTPS_PROXY=$HTTPS_PROXY} ${https_proxy:+https_proxy=$https_proxy} \
        TFUQ_PI_FIXTURES=/fixtures TFUQ_PI_EXPECT_INSTALLED=1 \
        unshare --mount --propagation private sh -c '
            root=$1 cpuinfo=$2; shift 2
            mount -t proc proc "$root/proc" && mount -t sysfs -o ro sysfs "$root/sys" || exit 1
            [ "$cpuinfo" = host ] || mount --bind "$cpuinfo" "$root/proc/cpuinfo" || exit 1
            exec chroot "$root" /bin/dash -c "cd /src && exec \"\$@\"" arm64 "$@"' sh "$root" "$cpuinfo" "$@"
}
machine=$(arm64 python3.11 -c 'import platform, sys; print(platform.machine(), sys.version.split()[0])')
echo "chroot: $machine"
case $machine in aarch64\ 3.11.*) ;; *) echo "FAILED: expected aarch64 and Python 3.11 in the chroot, got: $machine"; exit 1;; esac
lap

echo "== arm64: python3.11 -m venv /pi && pip install \".[pi]\" pytest hypothesis (from PyPI, in emulation)"
arm64 python3.11 -m venv /pi
arm64 /pi/bin/pip install ".[pi]" pytest hypothesis > "$work/pip.log" 2>&1 || { tail -30 "$work/pip.log"; echo "FAILED: pip install in the arm64 venv"; exit 1; }
echo "wheels pip chose (name version: tags):"
arm64 /pi/bin/python -P - <<'PY'  # -P: not /src, where pip left tfuq.egg-info
import importlib.metadata as metadata

for name in ("tfuq", "numpy", "tflite-runtime", "ai-edge-litert", "pillow", "ml-dtypes"):
    dist = metadata.distribution(name)
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines() if line.startswith("Tag:")]
    print(f"  {name} {dist.version}: {', '.join(tags)}")
PY
lap

echo "== arm64: the Pi test suite (models and expected outputs from $main_python on x86-64)"
"$main_python" tests/pi/make_fixtures.py --out "$root/fixtures" 2> "$work/make_fixtures.log" || {
    cat "$work/make_fixtures.log" >&2; exit 1; }
mapfile -t suite < <(grep -v '^#' tests/pi/suite.txt)
# As .ci/pi_env.sh: /src after site-packages, for tests._dummies.
arm64 /pi/bin/python -c 'import site, sys; open(site.getsitepackages()[0] + "/tfuq_tests.pth", "w").write(sys.argv[1] + "\n")' /src
# -o pythonpath= and the venv's own pytest: the installed tfuq is tested, not /src.
arm64 /pi/bin/pytest "${suite[@]}" -o pythonpath= -p no:cacheprovider -q -rf > "$work/pytest.log" 2>&1 && suite_rc=0 || suite_rc=$?
tail -15 "$work/pytest.log"
echo "arm64 Pi suite: $(tail -1 "$work/pytest.log" | tr -d '=')"
[ "$suite_rc" = 0 ] || { echo "FAILED: the Pi suite on arm64"; exit 1; }
lap

echo "== arm64: tfuq predict on photos with the demo model, arm64 against x86-64 ($pi_venv)"
[ -x "$pi_venv/bin/tfuq" ] || { echo "FAILED: no x86-64 Pi venv at $pi_venv: run .ci/pi_env.sh first"; exit 1; }
if [ -z "$demo_dir" ]; then
    demo_dir=$work/demo
    "$main_python" android_demo/tools/demo_model.py --out "$demo_dir" > /dev/null 2>&1
fi
mkdir -p "$root/demo" && cp "$demo_dir"/model.tflite "$demo_dir"/*.png "$root/demo/"
# Real photos: Tiny-ImageNet and CIFAR-10 images from the shared data (one per class), where
# it is ($SHARED_DATA, default ../shared/data beside the clone); the demo's two photos and the
# test images always.
"$main_python" - "$root/photos" "${SHARED_DATA:-../shared/data}/ood_dev" <<'PY'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

out, data = Path(sys.argv[1]), Path(sys.argv[2])
count = 0
for name, key, per_class in (("tinyimagenet_val_classes_0_99.npz", "x", 50), ("cifar10_test_100_per_class.npz", "x", 100)):
    if not (data / name).is_file():
        continue
    with np.load(data / name) as arrays:
        images = arrays[key][::per_class][:30]  # sorted by class: one image of each class
    for index, image in enumerate(images):
        Image.fromarray(image).save(out / f"{name.split('_')[0]}_{index:02d}.jpg", quality=90)
        count += 1
print(f"{count} real photos from {data}" if count else f"no real photos: {data} is absent; the demo's photos only")
PY
cp "$root"/demo/*.png "$root/photos/"
for path in "$root"/fixtures/image_*.png; do cp "$path" "$root/photos/test_${path##*/}"; done
photos=()
for path in "$root"/photos/*; do photos+=("/photos/${path##*/}"); done
models=(/demo/model.tflite /fixtures/tiny_masked.tflite /fixtures/tiny_deterministic.tflite /fixtures/tiny_in-graph.tflite)
backends=(tflite_runtime ai_edge_litert)
"$pi_venv/bin/python" tests/pi/cross_arch.py dump --out "$work/x86.npz" --backends "${backends[@]}" \
    --models "${models[@]/#/$root}" --photos "${photos[@]/#/$root}"
arm64 /pi/bin/python tests/pi/cross_arch.py dump --out /out/arm64.npz --backends "${backends[@]}" \
    --models "${models[@]}" --photos "${photos[@]}"
predict_pairs=()
for backend in "${backends[@]}"; do
    "$pi_venv/bin/tfuq" predict "$root/demo/model.tflite" "${photos[@]/#/$root}" --json --backend "$backend" \
        > "$work/x86_$backend.jsonl" 2> /dev/null
    arm64 /pi/bin/tfuq predict /demo/model.tflite "${photos[@]}" --json --backend "$backend" \
        > "$root/out/predict_$backend.jsonl" 2> "$root/out/predict_$backend.err"
    tail -1 "$root/out/predict_$backend.err" | sed "s/^/arm64 tfuq predict --backend $backend: /"
    if grep -q 'subnormal' "$root/out/predict_$backend.err"; then
        echo "FAILED: tfuq predict on arm64 warns about subnormals:"; grep subnormal "$root/out/predict_$backend.err"; exit 1
    fi
    predict_pairs+=(--predict "demo model --backend $backend" "$work/x86_$backend.jsonl" "$root/out/predict_$backend.jsonl")
done
"$pi_venv/bin/python" tests/pi/cross_arch.py compare "$work/x86.npz" "$root/out/arm64.npz" "${predict_pairs[@]}"
lap

echo "== arm64: ai-edge-litert with the host's x86 /proc/cpuinfo (what qemu-user 7.2 shows; a Pi never does)"
PI_CPUINFO=host arm64 /pi/bin/python -X faulthandler -c '
from ai_edge_litert.interpreter import Interpreter
Interpreter(model_path="/demo/model.tflite")
print("ai-edge-litert loaded the model")' > "$work/crash.log" 2>&1 && crash_rc=0 || crash_rc=$?
grep -E 'loaded the model|Segmentation fault$|line [0-9]+ in __init__' "$work/crash.log" | head -3 || true
echo "exit status $crash_rc$([ "$crash_rc" = 139 ] && echo ' (SIGSEGV in its CPU detection, as docs/raspberry_pi.md says)')"
echo "arm64 job: $((SECONDS - started)) s"
