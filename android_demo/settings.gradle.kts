// The Android demo of tfuq: a standalone Gradle build beside the Python package.
// `uqcore` is pure Kotlin (no Android), also compiled and tested without Gradle by
// uqcore/run_tests.sh; `app` is the Android application that depends on it.
pluginManagement {
    repositories {
        google {
            content {
                includeGroupByRegex("com\\.android.*")
                includeGroupByRegex("com\\.google.*")
                includeGroupByRegex("androidx.*")
            }
        }
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "tfuq-android-demo"
include(":uqcore", ":app")
