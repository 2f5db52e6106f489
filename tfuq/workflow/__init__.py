"""From labelled images to a shipped model: the train-convert-calibrate-evaluate flow, once.

``tfuq fit``, ``tfuq demo``, ``tfuq train`` and ``benchmarks/paper_experiment.py`` all run
their stages through here instead of each keeping a copy:

- :mod:`tfuq.workflow.folder`: check a folder of class subfolders before anything trains
  (images per class, unreadable files; numpy and Pillow only);
- :mod:`tfuq.workflow.split`: the per-class seeded train / validation / calibration / test
  split, saved beside the model (numpy only);
- :mod:`tfuq.workflow.steps`: build and train the classifier (cached trunk views or
  ordinary training), convert it with the self-check, calibrate the threshold, evaluate
  with the report (TensorFlow for the first two, imported inside them);
- :mod:`tfuq.workflow.fit`: the whole flow with its recipe, stage markers that let a
  stopped run resume, progress and the time of each stage, and the device summary.
"""
