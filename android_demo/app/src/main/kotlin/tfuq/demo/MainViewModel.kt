package tfuq.demo

import android.app.Application
import android.graphics.Bitmap
import android.net.Uri
import android.os.Build
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import tfuq.uqcore.Classification
import tfuq.uqcore.Classifier
import tfuq.uqcore.ModelConfig
import tfuq.uqcore.RunSettings
import java.io.FileNotFoundException
import java.io.IOException
import java.util.concurrent.Executors

/** What the screen shows. */
data class UiState(
    val model: ModelState = ModelState.Loading,
    val settings: RunSettings? = null,
    val preview: Bitmap? = null,
    val result: Classification? = null,
    val busy: Boolean = false,
    val error: String? = null
)

sealed class ModelState {
    object Loading : ModelState()
    /** No model in the APK's assets: the build was made without -PtfuqModel. */
    object Missing : ModelState()
    class Failed(val message: String) : ModelState()
    class Ready(val config: ModelConfig, val source: String, val classes: Int) : ModelState()
}

/**
 * Holds the model for the life of the screen and runs classifications on one background
 * thread: the interpreter is not thread-safe, and a single thread also keeps results in the
 * order the requests were made.
 */
class MainViewModel(application: Application) : AndroidViewModel(application) {
    private val worker = Executors.newSingleThreadExecutor { runnable -> Thread(runnable, "tfuq-inference") }
    private val inference = worker.asCoroutineDispatcher()
    private var model: LiteRtModel? = null
    private var classifier: Classifier? = null
    private var pixels: ByteArray? = null

    private val mutableState = MutableStateFlow(UiState())
    val state: StateFlow<UiState> = mutableState.asStateFlow()

    init {
        viewModelScope.launch {
            val app = getApplication<Application>()
            val loaded = withContext(inference) {
                try {
                    val m = LiteRtModel.fromAsset(app)
                    model = m
                    classifier = Classifier(m.config, m)
                    ModelState.Ready(m.config, m.source, m.classes)
                } catch (missing: FileNotFoundException) {
                    ModelState.Missing
                } catch (error: IOException) {
                    ModelState.Failed(app.getString(R.string.model_unreadable, error.message ?: error.toString()))
                } catch (error: LinkageError) {
                    // UnsatisfiedLinkError (no LiteRT library for this ABI), or the class that
                    // loads it failing to initialise: the app stays up and says so.
                    ModelState.Failed(app.getString(R.string.no_native_library, Build.SUPPORTED_ABIS.joinToString(", "), error.message ?: error.toString()))
                } catch (error: RuntimeException) {
                    // ModelFileException and the interpreter's IllegalArgumentException among them.
                    ModelState.Failed(error.message ?: error.toString())
                }
            }
            mutableState.update {
                it.copy(model = loaded, settings = (loaded as? ModelState.Ready)?.let { ready -> RunSettings.defaults(ready.config) })
            }
        }
    }

    /** A photo was picked or taken: prepare it and classify with the current settings. */
    fun onImage(uri: Uri) {
        val ready = state.value.model as? ModelState.Ready ?: return
        mutableState.update { it.copy(busy = true, error = null) }
        viewModelScope.launch {
            try {
                val prepared = withContext(inference) {
                    ImagePrep.prepare(getApplication<Application>().contentResolver, uri, ready.config)
                }
                pixels = prepared.pixels
                mutableState.update { it.copy(preview = prepared.preview, result = null) }
                classify()
            } catch (cancelled: CancellationException) {
                throw cancelled
            } catch (error: Exception) {
                // A photo that cannot be decoded (or a revoked URI) is the user's to fix.
                mutableState.update { it.copy(busy = false, error = "Cannot read that photo: ${error.message}") }
            }
        }
    }

    /** New settings from the sheet: keep them and classify the current photo again. */
    fun onSettings(settings: RunSettings) {
        mutableState.update { it.copy(settings = settings) }
        if (pixels != null) viewModelScope.launch { classify() }
    }

    private suspend fun classify() {
        val image = pixels
        val settings = state.value.settings
        val active = classifier
        if (image == null || settings == null || active == null) {
            mutableState.update { it.copy(busy = false) }
            return
        }
        mutableState.update { it.copy(busy = true, error = null) }
        try {
            val result = withContext(inference) { active.classify(image, settings) }
            mutableState.update { it.copy(result = result, busy = false) }
        } catch (error: IllegalArgumentException) {
            mutableState.update { it.copy(busy = false, error = error.message) }
        } catch (error: IllegalStateException) {
            mutableState.update { it.copy(busy = false, error = error.message) }
        }
    }

    override fun onCleared() {
        // The close runs on the inference thread, after any classification still queued there.
        worker.execute { model?.close() }
        worker.shutdown()
    }
}
