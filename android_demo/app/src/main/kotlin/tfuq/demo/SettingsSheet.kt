package tfuq.demo

import android.os.Bundle
import android.view.LayoutInflater
import android.view.View
import android.view.ViewGroup
import android.widget.ArrayAdapter
import androidx.core.view.isVisible
import androidx.fragment.app.activityViewModels
import com.google.android.material.bottomsheet.BottomSheetDialogFragment
import tfuq.demo.databinding.SheetSettingsBinding
import tfuq.uqcore.DecisionRule
import tfuq.uqcore.ModelConfig
import tfuq.uqcore.RunSettings
import tfuq.uqcore.Score
import tfuq.uqcore.UInt64
import java.util.Locale

/**
 * Exploration knobs: how many of the model's passes to use, the run seed (an unsigned 64-bit
 * integer, as on the Python side), and the abstention rule: the model's own, the interval
 * rule with any Z, or a threshold on any score.
 */
class SettingsSheet : BottomSheetDialogFragment() {
    private var _binding: SheetSettingsBinding? = null
    private val binding get() = _binding!!
    private val viewModel: MainViewModel by activityViewModels()

    override fun onCreateView(inflater: LayoutInflater, container: ViewGroup?, savedInstanceState: Bundle?): View {
        _binding = SheetSettingsBinding.inflate(inflater, container, false)
        return binding.root
    }

    override fun onViewCreated(view: View, savedInstanceState: Bundle?) {
        super.onViewCreated(view, savedInstanceState)
        val state = viewModel.state.value
        val ready = state.model as? ModelState.Ready
        val current = state.settings
        if (ready == null || current == null) {
            dismiss()
            return
        }
        val config = ready.config
        showPasses(config, current.passes)
        binding.seed.setText(UInt64.toString(current.seed))
        // A deterministic model has no dropout, so no seed changes anything.
        binding.seedLayout.isEnabled = config.mode == ModelConfig.Mode.MASKED

        val scores = Score.values().toList()
        binding.score.setAdapter(ArrayAdapter(requireContext(), android.R.layout.simple_list_item_1, scores.map { it.title }))
        binding.modelRule.text = getString(R.string.model_rule, config.decision.toString())

        when (current.rule) {
            config.decision -> binding.ruleGroup.check(R.id.rule_model)
            is DecisionRule.Interval -> binding.ruleGroup.check(R.id.rule_interval)
            is DecisionRule.Threshold -> binding.ruleGroup.check(R.id.rule_threshold)
            // Only a model file carries an all rule (the sheet builds single rules).
            is DecisionRule.All -> binding.ruleGroup.check(R.id.rule_model)
            // Only a model file carries an OOD guard: its threshold is calibrated for that model.
            is DecisionRule.Ood -> binding.ruleGroup.check(R.id.rule_model)
        }
        binding.confFactor.value = onGrid(current.rule.confFactor)
        val threshold = (current.rule as? DecisionRule.Threshold) ?: (config.decision as? DecisionRule.Threshold)
        val score = threshold?.score ?: Score.MAX_PROBABILITY
        binding.score.setText(score.title, false)
        binding.threshold.setText(number(threshold?.threshold ?: DEFAULT_THRESHOLDS.getValue(score)))

        showRuleFields()
        binding.ruleGroup.addOnButtonCheckedListener { _, _, _ -> showRuleFields() }
        binding.confFactor.addOnChangeListener { _, value, _ ->
            binding.confFactorLabel.text = getString(R.string.conf_factor_label, value)
        }
        binding.confFactorLabel.text = getString(R.string.conf_factor_label, binding.confFactor.value)
        binding.score.setOnItemClickListener { _, _, position, _ ->
            binding.threshold.setText(number(DEFAULT_THRESHOLDS.getValue(scores[position])))
        }

        binding.reset.setOnClickListener {
            viewModel.onSettings(RunSettings.defaults(config))
            dismiss()
        }
        binding.applySettings.setOnClickListener { apply(config, scores) }
    }

    private fun showPasses(config: ModelConfig, passes: Int) {
        // A slider needs two distinct ends: a one-pass model has nothing to choose.
        binding.passes.isVisible = config.passes > 1
        if (config.passes > 1) {
            binding.passes.valueFrom = 1f
            binding.passes.valueTo = config.passes.toFloat()
            binding.passes.value = passes.toFloat()
            binding.passes.addOnChangeListener { _, value, _ ->
                binding.passesLabel.text = getString(R.string.passes_label, value.toInt(), config.passes)
            }
        }
        binding.passesLabel.text = getString(R.string.passes_label, passes, config.passes)
    }

    private fun showRuleFields() {
        binding.intervalGroup.isVisible = binding.ruleGroup.checkedButtonId == R.id.rule_interval
        binding.thresholdGroup.isVisible = binding.ruleGroup.checkedButtonId == R.id.rule_threshold
        binding.modelRule.isVisible = binding.ruleGroup.checkedButtonId == R.id.rule_model
    }

    private fun apply(config: ModelConfig, scores: List<Score>) {
        val seed = try {
            UInt64.parse(binding.seed.text.toString().trim())
        } catch (error: NumberFormatException) {
            binding.seedLayout.error = getString(R.string.bad_seed)
            return
        }
        binding.seedLayout.error = null
        val rule: DecisionRule = when (binding.ruleGroup.checkedButtonId) {
            R.id.rule_interval -> DecisionRule.Interval(binding.confFactor.value.toDouble())
            R.id.rule_threshold -> {
                val score = scores.firstOrNull { it.title == binding.score.text.toString() } ?: Score.MAX_PROBABILITY
                val value = binding.threshold.text.toString().trim().toDoubleOrNull()
                if (value == null || value.isNaN() || value.isInfinite()) {
                    binding.thresholdLayout.error = getString(R.string.bad_threshold)
                    return
                }
                binding.thresholdLayout.error = null
                DecisionRule.Threshold(score, value)
            }
            else -> config.decision
        }
        val passes = if (config.passes > 1) binding.passes.value.toInt() else 1
        viewModel.onSettings(RunSettings(passes, seed, rule))
        dismiss()
    }

    override fun onDestroyView() {
        super.onDestroyView()
        _binding = null
    }

    private fun number(value: Double) = String.format(Locale.ROOT, "%.3f", value)

    // The slider only takes values on its 0.1 grid within [0, 5]; the model's own Z, whatever
    // it is, stays available exactly through "Model's rule".
    private fun onGrid(value: Double): Float = (Math.round(value.coerceIn(0.0, 5.0) * 10) / 10.0).toFloat()

    companion object {
        const val TAG = "settings"

        /** Starting points when a score is picked without a calibrated threshold for it. */
        private val DEFAULT_THRESHOLDS = mapOf(
            Score.MAX_PROBABILITY to 0.5,
            Score.PREDICTIVE_ENTROPY to 0.5,
            Score.MUTUAL_INFORMATION to 0.1,
            Score.VARIATION_RATIO to 0.2
        )
    }
}
