"""ROS 2 side of the EZ-M stack, the robot path: the latent planner on onnxruntime, task commands, status,
the browser view, and the stack's topics, QoS and message conversions. Nothing here imports torch, MuJoCo
or sim_bridge (tests/foundation/test_imports.py checks it); what needs the simulator is in sim_bridge."""
