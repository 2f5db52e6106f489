package tfuq.demo

import android.Manifest
import android.app.Activity
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.net.Uri
import android.os.Bundle
import android.widget.Toast
import androidx.activity.result.contract.ActivityResultContract
import androidx.activity.result.contract.ActivityResultContracts.RequestPermission
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageCapture
import androidx.camera.core.ImageCaptureException
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.core.content.ContextCompat
import tfuq.demo.databinding.ActivityCameraBinding
import java.io.File

/**
 * Takes one photo with CameraX and returns it as a file URI in the app's cache. The photo
 * then follows the same path as a picked one, so both are prepared by the same code.
 */
class CameraActivity : AppCompatActivity() {
    private lateinit var binding: ActivityCameraBinding
    private var capture: ImageCapture? = null

    private val askPermission = registerForActivityResult(RequestPermission()) { granted ->
        if (granted) {
            startCamera()
        } else {
            Toast.makeText(this, R.string.camera_denied, Toast.LENGTH_LONG).show()
            finish()
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        binding = ActivityCameraBinding.inflate(layoutInflater)
        setContentView(binding.root)
        binding.shutter.setOnClickListener { takePhoto() }
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            askPermission.launch(Manifest.permission.CAMERA)
        }
    }

    private fun startCamera() {
        val providerFuture = ProcessCameraProvider.getInstance(this)
        providerFuture.addListener({
            try {
                bind(providerFuture.get())
            } catch (error: Exception) {
                // The provider failed to start, the camera is in use or was disconnected, or
                // CameraX refused the use cases: report it and go back to the photo picker.
                giveUp(getString(R.string.camera_failed, error.cause?.message ?: error.message ?: error.toString()))
            }
        }, ContextCompat.getMainExecutor(this))
    }

    private fun bind(provider: ProcessCameraProvider) {
        // Tablets and Chromebooks may have only a front camera, some devices none at all.
        val selector = when {
            provider.hasCamera(CameraSelector.DEFAULT_BACK_CAMERA) -> CameraSelector.DEFAULT_BACK_CAMERA
            provider.hasCamera(CameraSelector.DEFAULT_FRONT_CAMERA) -> CameraSelector.DEFAULT_FRONT_CAMERA
            else -> {
                giveUp(getString(R.string.no_camera))
                return
            }
        }
        val preview = Preview.Builder().build()
        preview.setSurfaceProvider(binding.preview.surfaceProvider)
        val imageCapture = ImageCapture.Builder()
            .setCaptureMode(ImageCapture.CAPTURE_MODE_MINIMIZE_LATENCY)
            .setTargetRotation(binding.preview.display?.rotation ?: 0)
            .build()
        provider.unbindAll()
        provider.bindToLifecycle(this, selector, preview, imageCapture)
        capture = imageCapture
    }

    /** Says why there is no camera and returns to the main screen, where a photo can be picked. */
    private fun giveUp(message: String) {
        Toast.makeText(this, message, Toast.LENGTH_LONG).show()
        setResult(Activity.RESULT_CANCELED)
        finish()
    }

    private fun takePhoto() {
        val imageCapture = capture ?: return
        binding.shutter.isEnabled = false
        val file = File(cacheDir, CAPTURE_FILE)
        val options = ImageCapture.OutputFileOptions.Builder(file).build()
        imageCapture.takePicture(options, ContextCompat.getMainExecutor(this), object : ImageCapture.OnImageSavedCallback {
            override fun onImageSaved(output: ImageCapture.OutputFileResults) {
                // The JPEG carries the rotation in EXIF; ImageDecoder applies it when decoding.
                setResult(Activity.RESULT_OK, Intent().setData(Uri.fromFile(file)))
                finish()
            }

            override fun onError(exception: ImageCaptureException) {
                binding.shutter.isEnabled = true
                Toast.makeText(this@CameraActivity, getString(R.string.capture_failed, exception.message), Toast.LENGTH_LONG).show()
            }
        })
    }

    /** `registerForActivityResult(CameraActivity.TakePhoto())` gives the photo's URI, or null if cancelled. */
    class TakePhoto : ActivityResultContract<Unit, Uri?>() {
        override fun createIntent(context: Context, input: Unit): Intent = Intent(context, CameraActivity::class.java)

        override fun parseResult(resultCode: Int, intent: Intent?): Uri? =
            if (resultCode == Activity.RESULT_OK) intent?.data else null
    }

    private companion object {
        // One file, overwritten each time: the app keeps no photos.
        const val CAPTURE_FILE = "capture.jpg"
    }
}
