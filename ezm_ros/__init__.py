"""ROS 2 side of the EZ-M stack: the latent planner on onnxruntime (no torch), task commands, status
and visualization. Nothing here imports torch; tests/foundation/test_imports.py checks it."""
