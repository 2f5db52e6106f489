#!/usr/bin/env bash
# The Kotlin core's host work per photo on the JVM (benchmarks/kotlin/HostWork.kt): masks,
# photo rule (v1, and v2 from full-size pixels and after a decode at 1/s) against java.awt's
# scaling, aggregation and decision, for Lite0's shapes.
#
#   bash benchmarks/end_to_end_kotlin.sh PHOTO_DIR [REPEATS]
#
# PHOTO_DIR: the photo set `python benchmarks/end_to_end.py photos --out DIR` writes. Needs
# kotlinc and Android's org.json jar, as android_demo/uqcore/run_tests.sh (which installs them).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
orgjson="${ORG_JSON_JAR:-/usr/share/java/com.android.json.jar}"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
kotlinc "$repo/android_demo/uqcore/src/main/kotlin" "$here/kotlin/HostWork.kt" -cp "$orgjson" \
    -include-runtime -d "$build/hostwork.jar" 2>&1 | grep -v -e "^OpenJDK" -e "^warning" || true
echo "$(date -u '+%Y-%m-%d %H:%M') UTC, $(uptime | sed 's/.*load/load/'), $(nproc) CPUs, $(java -version 2>&1 | head -n 1)"
java -Djava.awt.headless=true -cp "$build/hostwork.jar:$orgjson" tfuq.bench.HostWorkKt "$@"
