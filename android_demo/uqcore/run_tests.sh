#!/usr/bin/env bash
# Compile the pure-Kotlin core of the Android demo and run its JUnit 4 tests against the
# shared vectors in tests/vectors, without Gradle or the Android SDK.
#
#   bash android_demo/uqcore/run_tests.sh
#
# Installs Debian's kotlin (1.3.31), junit4 and libandroid-json-java (org.json as Android's
# framework has it, which the core parses tfuq.json with) when one is missing (CI runs as
# root). Any kotlinc, JUnit 4 and Android org.json work: set KOTLINC, JUNIT_JAR, HAMCREST_JAR,
# ORG_JSON_JAR to use others.
# Also honoured: TFUQ_VECTORS (default: the repository's tests/vectors), TFUQ_MODEL (a real
# `tfuq convert` output to read as well), UQCORE_BUILD (default: uqcore/build/kotlinc),
# TFUQ_FUZZ_CASES and TFUQ_FUZZ_SEED (the model-file fuzzer's budget, default 4000, and seed).
# Ends with the line "N passed, N failed, N skipped"; exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
vectors="${TFUQ_VECTORS:-$repo/tests/vectors}"
build="${UQCORE_BUILD:-$here/build/kotlinc}"
started=$(date +%s)

find_hamcrest() {
    for jar in /usr/share/java/hamcrest-core.jar /usr/share/java/hamcrest.jar; do
        if [ -f "$jar" ]; then echo "$jar"; return; fi
    done
}

junit="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
hamcrest="${HAMCREST_JAR:-$(find_hamcrest)}"
orgjson="${ORG_JSON_JAR:-/usr/share/java/com.android.json.jar}"
kotlinc="${KOTLINC:-$(command -v kotlinc || true)}"
if [ -z "$kotlinc" ] || [ ! -f "$junit" ] || [ -z "$hamcrest" ] || [ ! -f "$orgjson" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "run_tests.sh: kotlinc, JUnit 4 or org.json is missing; run as root to let it apt-get install" \
             "kotlin junit4 libandroid-json-java, or set KOTLINC, JUNIT_JAR, HAMCREST_JAR and ORG_JSON_JAR" >&2
        exit 2
    fi
    echo "installing kotlin, junit4 and libandroid-json-java with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kotlin junit4 libandroid-json-java >/dev/null
    kotlinc="${KOTLINC:-$(command -v kotlinc || true)}"
    junit="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
    hamcrest="${HAMCREST_JAR:-$(find_hamcrest)}"
    orgjson="${ORG_JSON_JAR:-/usr/share/java/com.android.json.jar}"
fi
if [ -z "$kotlinc" ]; then echo "run_tests.sh: no kotlinc after installing kotlin" >&2; exit 2; fi
for jar in "$junit" "$hamcrest" "$orgjson"; do
    if [ ! -f "$jar" ]; then echo "run_tests.sh: jar ${jar:-(hamcrest)} not found" >&2; exit 2; fi
done
if [ ! -f "$vectors/README.md" ]; then
    echo "run_tests.sh: $vectors is not the shared vectors folder (no README.md)" >&2
    exit 2
fi

rm -rf "$build"
mkdir -p "$build"
echo "== $("$kotlinc" -version 2>&1 | grep -i kotlin | head -n 1)"

# The main sources compile alone first (with org.json, which Android provides), so a
# test-only dependency cannot creep into the core.
echo "== compiling uqcore"
"$kotlinc" -cp "$orgjson" "$here/src/main/kotlin" -d "$build/main"
echo "== compiling its tests"
# -include-runtime puts the Kotlin stdlib in the jar: no hunting for it per kotlinc install.
"$kotlinc" -cp "$build/main:$orgjson:$junit:$hamcrest" "$here/src/test/kotlin" -include-runtime -d "$build/tests.jar"

# A model file packed by the repository's own Python code (tfuq/runtime/modelfile.py needs only the
# standard library), so the reader is tested against Python's zip layout, not only the JDK's.
packed=""
if command -v python3 >/dev/null 2>&1; then
    if PYTHONPATH="$repo" python3 - "$build/python_packed.tflite" <<'PY'
import json
import sys

from tfuq.runtime import modelfile

path = sys.argv[1]
# The keys tfuq/conversion/convert.py writes, for a small masked model.
config = {
    "mode": "masked",
    "passes": 6,
    "labels": ["daisy", "rose", "tulip"],
    "input": {"name": "image", "height": 96, "width": 64, "channels": 3, "pixel_format": "RGB",
              "dtype": "uint8", "preprocessing": "inside the model: feed raw pixels 0-255",
              "photo_rule": {"name": "center-crop-bilinear", "version": 1}},
    "output": {"name": "output_0", "kind": "probabilities", "layout": "(passes, classes)"},
    "mc_dropout": [{"layer": "head_dropout", "input": "mask_0", "shape": [6, 32], "rate": 0.3}],
    "seed_scheme": {"name": "splitmix64-counter", "version": 1, "keep_bits": 24,
                    "mask_values": "0 or 1; the model scales kept units by 1/(1-rate)"},
    "decision": {"rule": "interval", "conf_factor": 1.5},
}
flatbuffer = b"\x1c\x00\x00\x00TFL3" + bytes(range(200))
modelfile.write(path, flatbuffer, config)
with open(path + ".json", "w") as out:
    json.dump(modelfile.read_config(path).to_dict(), out)
PY
    then
        packed="$build/python_packed.tflite"
    else
        echo "note: could not pack a model file with tfuq.runtime.modelfile; that test will be skipped" >&2
    fi
fi

classes=$(cd "$here/src/test/kotlin" && find . -name '*Test.kt' | sed -e 's|^\./||' -e 's|\.kt$||' -e 's|/|.|g' | sort)
echo "== running $(echo "$classes" | wc -l) test classes against $vectors"
status=0
java -Dtfuq.vectors="$vectors" -Dtfuq.packedModel="$packed" -Dtfuq.model="${TFUQ_MODEL:-}" \
    -Dtfuq.fuzz.cases="${TFUQ_FUZZ_CASES:-}" -Dtfuq.fuzz.seed="${TFUQ_FUZZ_SEED:-}" \
    -cp "$build/main:$build/tests.jar:$orgjson:$junit:$hamcrest" tfuq.uqcore.RunTests $classes > "$build/results.txt" 2>&1 || status=$?
# The counting line must be the last one CI sees, so the runtime goes before it.
grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$build/results.txt" || true
echo "uqcore: run_tests.sh took $(( $(date +%s) - started )) s"
tail -n 1 "$build/results.txt"
exit $status
