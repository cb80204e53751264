"""The EZ-M learner (PyTorch): networks, replay, reanalysis, the trainer, evaluation, the probe and export.

`ezm-train`, `ezm-eval`, `ezm-probe` and `ezm-export` are its entry points (`ezm_training.cli`,
`ezm_training.probe`, `ezm_training.export`); docs/design.md explains the method. The search,
`ezm_training.search`, imports no framework and is also installed alone as the ROS package `ezm_search`,
so this file imports nothing: a robot install that holds only the search never runs it.
"""
