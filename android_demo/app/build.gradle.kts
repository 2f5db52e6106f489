plugins {
    alias(libs.plugins.android.application)
}

android {
    namespace = "tfuq.demo"
    compileSdk = 36

    defaultConfig {
        applicationId = "tfuq.demo"
        // ImageDecoder (API 28) decodes photos with their EXIF rotation applied.
        minSdk = 28
        targetSdk = 36
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    buildFeatures {
        viewBinding = true
    }

    androidResources {
        // Stored uncompressed, the model is memory-mapped straight from the APK.
        noCompress += "tflite"
    }
}

dependencies {
    implementation(project(":uqcore"))
    implementation(libs.litert)
    implementation(libs.camera.camera2)
    implementation(libs.camera.lifecycle)
    implementation(libs.camera.view)
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.appcompat)
    implementation(libs.androidx.activity.ktx)
    implementation(libs.androidx.fragment.ktx)
    implementation(libs.androidx.lifecycle.viewmodel.ktx)
    implementation(libs.androidx.lifecycle.runtime.ktx)
    implementation(libs.androidx.constraintlayout)
    implementation(libs.material)
    implementation(libs.kotlinx.coroutines.android)
}

/**
 * Copies a model made by `tfuq convert` into the app's assets as `model.tflite`, after checking
 * that it is a TFLite flatbuffer carrying tfuq's configuration (the app reads it fully at start).
 *
 *     ./gradlew installDebug -PtfuqModel=/path/to/model.tflite
 */
abstract class CopyTfuqModel : DefaultTask() {
    @get:Optional
    @get:InputFile
    @get:PathSensitive(PathSensitivity.NONE)
    abstract val model: RegularFileProperty

    @get:OutputFile
    abstract val target: RegularFileProperty

    @TaskAction
    fun copy() {
        if (!model.isPresent) {
            throw GradleException("say which model to copy: -PtfuqModel=/path/to/model.tflite (made by `tfuq convert`)")
        }
        val source = model.get().asFile
        val bytes = source.readBytes()
        if (bytes.size < 8 || String(bytes, 4, 4, Charsets.ISO_8859_1) != "TFL3") {
            throw GradleException("$source is not a TFLite flatbuffer (no TFL3 identifier)")
        }
        // The zip's central directory, near the end of the file, names tfuq.json.
        val tail = String(bytes, maxOf(0, bytes.size - 65_557), minOf(bytes.size, 65_557), Charsets.ISO_8859_1)
        if (!tail.contains("PK\u0005\u0006") || !tail.contains("tfuq.json")) {
            throw GradleException("$source carries no tfuq configuration: make it with `tfuq convert`")
        }
        val out = target.get().asFile
        out.parentFile.mkdirs()
        source.copyTo(out, overwrite = true)
        logger.lifecycle("tfuq: copied $source (${bytes.size} bytes) to $out")
    }
}

val tfuqModel = providers.gradleProperty("tfuqModel")
// A relative -PtfuqModel is taken from where gradlew was run, as a shell user expects.
val invokedFrom: File = gradle.startParameter.currentDir
val modelFile = tfuqModel.map { path ->
    val file = File(path)
    project.layout.projectDirectory.file((if (file.isAbsolute) file else File(invokedFrom, path)).absolutePath)
}
val modelAsset = project.layout.projectDirectory.file("src/main/assets/model.tflite")
val copyTfuqModel = tasks.register<CopyTfuqModel>("copyTfuqModel") {
    group = "tfuq"
    description = "Copies -PtfuqModel=/path/model.tflite (from `tfuq convert`) into src/main/assets/model.tflite"
    model.set(modelFile)
    target.set(modelAsset)
}

// Building with -PtfuqModel copies the model first, so one command builds the app around it.
if (tfuqModel.isPresent) {
    tasks.named("preBuild") { dependsOn(copyTfuqModel) }
}
