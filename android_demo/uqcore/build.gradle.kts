import org.jetbrains.kotlin.gradle.dsl.JvmTarget

// Pure Kotlin, no Android: the same sources run_tests.sh compiles with kotlinc 1.3.
plugins {
    alias(libs.plugins.kotlin.jvm)
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    // tfuq.json is read with org.json, which Android's framework provides to the app (so it is
    // never packaged); the JVM tests get the same implementation from this jar.
    compileOnly(libs.android.json)
    testImplementation(libs.android.json)
    testImplementation(libs.junit)
}

// The language-neutral vectors shared with the Python tests, never copied into this module.
val sharedVectors = rootProject.file("../tests/vectors")

tasks.test {
    systemProperty("tfuq.vectors", sharedVectors.absolutePath)
    // A changed vector must rerun the tests, not be served from the build cache.
    inputs.dir(sharedVectors).withPathSensitivity(PathSensitivity.RELATIVE)
    testLogging {
        events("failed", "skipped")
        exceptionFormat = org.gradle.api.tasks.testing.logging.TestExceptionFormat.FULL
    }
}
